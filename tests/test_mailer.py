"""Sign-in mail through a real SMTP server on loopback (aiosmtpd): plain,
with credentials, and over TLS (smtps://); and the log line without one."""

from __future__ import annotations

import asyncio
import logging
import subprocess

import pytest

from chatzilla.mailer import LogMailer, MailError, SMTPMailer, make_mailer

from .smtp_server import MailCatcher

URL = "http://chat.test/signin/link?t=abc"
#: A self-signed certificate for localhost (an EC key: quick to make).
SELF_SIGNED = [
    *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
    *("-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
]


@pytest.fixture
def catcher_of():
    started = []

    def start(**kwargs) -> MailCatcher:
        catcher = MailCatcher(**kwargs).start()
        started.append(catcher)
        return catcher

    yield start
    for catcher in started:
        catcher.stop()


async def wait_for(catcher: MailCatcher, address: str):
    return await asyncio.get_running_loop().run_in_executor(None, catcher.wait_for, address)


@pytest.mark.gen_test
async def test_a_link_is_mailed_from_the_sender_setting(catcher_of):
    catcher = catcher_of()
    mailer = make_mailer(f"smtp://127.0.0.1:{catcher.port}", "Chatzilla <chat@example.org>")
    await mailer.send_link("alice@example.com", URL)
    mailer.close()
    mail = await wait_for(catcher, "alice@example.com")
    assert mail["From"] == "Chatzilla <chat@example.org>"
    assert mail["Subject"] == "Your Chatzilla sign-in link"
    assert URL in mail.get_content() and "15 minutes" in mail.get_content()


@pytest.mark.gen_test
async def test_credentials_in_the_url_are_used(catcher_of):
    catcher = catcher_of(users={"mailer@example.org": "p@ss word"})
    mailer = SMTPMailer(
        f"smtp://mailer%40example.org:p%40ss%20word@127.0.0.1:{catcher.port}", "c@example.org"
    )
    await mailer.send_link("bob@example.com", URL)
    await wait_for(catcher, "bob@example.com")
    assert catcher.logins == ["mailer@example.org"]
    mailer.close()


@pytest.mark.gen_test
async def test_smtps_speaks_tls_from_the_start(catcher_of, tmp_path, monkeypatch):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [*SELF_SIGNED, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    catcher = catcher_of(users={"u": "p"}, tls=(str(cert), str(key)))
    # The mailer checks the server's certificate: this one is trusted here.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    mailer = SMTPMailer(f"smtps://u:p@localhost:{catcher.port}", "c@example.org")
    await mailer.send_link("carol@example.com", URL)
    assert URL in (await wait_for(catcher, "carol@example.com")).get_content()
    assert catcher.logins == ["u"]
    mailer.close()


@pytest.mark.gen_test
async def test_no_smtp_writes_the_link_to_the_log(caplog):
    caplog.set_level(logging.INFO, "chatzilla.mail")
    mailer = make_mailer("", "c@example.org")
    assert isinstance(mailer, LogMailer)
    await mailer.send_link("alice@example.com", URL)
    [record] = [r for r in caplog.records if r.name == "chatzilla.mail"]
    assert record.levelno == logging.INFO
    assert record.getMessage() == f"sign-in link for alice@example.com: {URL}"


@pytest.mark.gen_test
async def test_an_unreachable_server_is_a_mail_error(catcher_of):
    from .helpers import free_port

    mailer = SMTPMailer(f"smtp://127.0.0.1:{free_port()}", "c@example.org")
    with pytest.raises(MailError):
        await mailer.send_link("alice@example.com", URL)
    mailer.close()
