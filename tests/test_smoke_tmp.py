import pytest

@pytest.mark.gen_test
async def test_chat(clients):
    a = await clients()
    b = await clients()
    ja = await a.join("alice@Example.COM")
    assert ja["email"] == "alice@example.com"
    jb = await b.join("bob@example.com")
    assert jb["participants"] == ["alice@example.com", "bob@example.com"]
    p = await a.expect("presence")
    assert p == {"type": "presence", "event": "join", "email": "bob@example.com", "count": 2}
    await b.send({"type": "message", "content": " hi ", "ref": "b-1"})
    sent = await b.expect("sent")
    m = await a.expect("message")
    assert m["content"] == "hi" and m["id"] == sent["id"] == 1 and sent["ref"] == "b-1"
    await b.send("nonsense")
    e = await b.expect("error"); assert e["code"] == "bad_frame"
