// The connection: frames in and out, and coming back after a drop soon,
// at most about 3 s later, at once when asked.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { Connection, RETRY_MAX_MS } from '../../static/js/connection.js';
import { Clock, FakeSocket, recorder } from './fakes.js';

function setup(random = () => 0.5) {
  const clock = new Clock();
  const sockets = [];
  const listener = recorder();
  const connection = new Connection({
    open: () => {
      const socket = new FakeSocket();
      sockets.push(socket);
      return socket;
    },
    timers: clock,
    random,
    listener,
  });
  return { clock, sockets, listener, connection };
}

describe('a connection', () => {
  it('carries frames both ways once open', () => {
    const { sockets, listener, connection } = setup();
    connection.start();
    assert.equal(connection.state, 'connecting');
    assert.equal(connection.send({ type: 'typing' }), false);
    sockets[0].open();
    assert.equal(connection.state, 'connected');
    assert.equal(connection.send({ type: 'typing' }), true);
    assert.deepEqual(sockets[0].sent, [{ type: 'typing' }]);
    sockets[0].receive({ type: 'joined', participants: [] });
    sockets[0].receive('not json');
    sockets[0].receive('[1, 2]');
    assert.deepEqual(listener.named('frame'), [['frame', { type: 'joined', participants: [] }]]);
    assert.deepEqual(listener.named('badFrame'), [['badFrame', 'not json'], ['badFrame', '[1, 2]']]);
    assert.deepEqual(listener.named('state').map((call) => call[1]), ['connecting', 'connected']);
  });

  it('comes back after 0.5, 1, 2, then never more than 3 seconds, jittered', () => {
    for (const [random, factor] of [[0, 0.75], [0.5, 1], [0.9999, 1.25]]) {
      const { clock, sockets, listener, connection } = setup(() => random);
      connection.start();
      sockets[0].open();
      sockets[0].drop();
      assert.equal(listener.named('closed').length, 1);
      assert.equal(connection.state, 'reconnecting');
      const waits = [];
      for (let i = 0; i < 6; i += 1) {
        waits.push(clock.nextIn());
        clock.advance(clock.nextIn());
        assert.equal(sockets.length, i + 2);
        sockets.at(-1).drop();  // the server is still down
      }
      const expected = [500, 1000, 2000, 3000, 3000, 3000].map((ms) => ms * factor);
      waits.forEach((wait, i) => assert.ok(Math.abs(wait - expected[i]) < 1, `${waits} ${expected}`));
      assert.ok(Math.max(...waits) <= RETRY_MAX_MS * 1.25);
      // Attempts that never opened are no news to the listener.
      assert.equal(listener.named('closed').length, 1);
      sockets.at(-1).onclose = null;
      clock.advance(clock.nextIn());
      sockets.at(-1).open();
      assert.equal(listener.named('opened').length, 2);
      // Open again: the next drop starts from the short wait.
      sockets.at(-1).drop();
      assert.ok(Math.abs(clock.nextIn() - 500 * factor) < 1);
    }
  });

  it('tries again at once when asked, and from the short wait on', () => {
    const { clock, sockets, connection } = setup();
    connection.start();
    sockets[0].drop();
    clock.advance(clock.nextIn());
    sockets[1].drop();
    clock.advance(clock.nextIn());
    sockets[2].drop();
    assert.equal(clock.nextIn(), 2000);
    connection.retryNow();
    assert.equal(sockets.length, 4);
    assert.equal(clock.pending, 0);
    sockets[3].drop();
    assert.equal(clock.nextIn(), 500);
    // Connected (or connecting): nothing to cut short.
    clock.advance(500);
    connection.retryNow();
    assert.equal(sockets.length, 5);
  });

  it('waits at least 10 s when told there are too many connections', () => {
    const { clock, sockets, connection } = setup();
    connection.start();
    sockets[0].open();
    sockets[0].drop(4029);
    assert.equal(clock.nextIn(), 10000);
  });

  it('starts afresh on restart, without telling of the old one', () => {
    const { sockets, listener, connection } = setup();
    connection.start();
    sockets[0].open();
    connection.restart();
    assert.equal(sockets[0].closed, true);
    assert.equal(sockets.length, 2);
    assert.equal(listener.named('closed').length, 0);
    // Whatever the old one still receives goes nowhere.
    assert.equal(sockets[0].onmessage, null);
    assert.equal(sockets[0].onclose, null);
    sockets[1].open();
    assert.equal(connection.state, 'connected');
  });
});
