// The reference: the npm `sockjs` server speaking the benchmark's subset of
// ../../shared/PROTOCOL.md (version 1), for bench/run.py to compare against.
//
//   node bench/node/server.js [PORT]      (or PORT=... ; 0 picks a free port)
//
// prints "Node sockjs reference is serving http://127.0.0.1:PORT/" once it
// listens. Protocol subset, the same as bench/floor_server.py:
// - join {email, room?} -> joined {email, participants, history: []} to the
//   joiner; presence join/leave to the others in the room when an e-mail
//   gains its first / loses its last connection;
// - message {content, ref?} -> message {id, sender, content, ts} to every
//   other connection of the room, then sent {id, ts, ref} to the sender;
// - anything else -> error {code, reason, ref?}; the connection stays open.
'use strict';

const http = require('http');
const sockjs = require('sockjs');

const LOBBY = 'lobby';
const rooms = new Map(); // name -> {members: Map(conn -> email), perEmail: Map(email -> n), lastId}

function send(conn, frame) {
  conn.write(JSON.stringify(frame));
}

function error(conn, code, reason, ref) {
  const frame = {type: 'error', code, reason};
  if (ref !== undefined && ref !== null) frame.ref = ref;
  send(conn, frame);
}

function tellOthers(room, origin, frame) {
  const text = JSON.stringify(frame);
  for (const conn of room.members.keys()) {
    if (conn !== origin) conn.write(text);
  }
}

function join(conn, state, email, roomName, ref) {
  if (state.email !== null) return error(conn, 'already_joined', 'this connection has already joined', ref);
  if (typeof email !== 'string' || !email.trim().includes('@') || typeof roomName !== 'string') {
    return error(conn, 'invalid_email', 'an e-mail address is required', ref);
  }
  email = email.trim();
  let room = rooms.get(roomName);
  if (!room) {
    room = {members: new Map(), perEmail: new Map(), lastId: 0};
    rooms.set(roomName, room);
  }
  state.email = email;
  state.room = roomName;
  room.members.set(conn, email);
  const tabs = (room.perEmail.get(email) || 0) + 1;
  room.perEmail.set(email, tabs);
  send(conn, {type: 'joined', email, participants: [...room.perEmail.keys()], history: []});
  if (tabs === 1) {
    tellOthers(room, conn, {type: 'presence', event: 'join', email, count: room.perEmail.size});
  }
}

function say(conn, state, content, ref) {
  if (state.email === null) return error(conn, 'not_joined', 'join before sending messages', ref);
  if (typeof content !== 'string' || !content.trim()) return error(conn, 'empty', 'the message is empty', ref);
  const room = rooms.get(state.room);
  room.lastId += 1;
  const ts = Date.now() / 1000;
  tellOthers(room, conn, {type: 'message', id: room.lastId, sender: state.email, content: content.trim(), ts});
  const ack = {type: 'sent', id: room.lastId, ts};
  if (ref !== undefined && ref !== null) ack.ref = ref;
  send(conn, ack);
}

function leave(conn, state) {
  if (state.room === null) return;
  const room = rooms.get(state.room);
  room.members.delete(conn);
  const tabs = room.perEmail.get(state.email) - 1;
  if (tabs > 0) {
    room.perEmail.set(state.email, tabs);
  } else {
    room.perEmail.delete(state.email);
    tellOthers(room, conn, {type: 'presence', event: 'leave', email: state.email, count: room.perEmail.size});
  }
  if (room.members.size === 0) rooms.delete(state.room);
  state.room = null;
}

const chat = sockjs.createServer({
  prefix: '/chat',
  log: (severity, line) => { if (severity === 'error') console.error(line); },
});

chat.on('connection', (conn) => {
  if (conn === null) return; // sockjs 0.3 may emit null for a session closed early
  const state = {email: null, room: null};
  conn.on('data', (message) => {
    let frame;
    try {
      frame = JSON.parse(message);
    } catch (e) {
      frame = null;
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame) || typeof frame.type !== 'string') {
      return error(conn, 'bad_frame', "a frame must be a JSON object with a string 'type'");
    }
    if (frame.type === 'join') {
      join(conn, state, frame.email, frame.room === undefined ? LOBBY : frame.room, frame.ref);
    } else if (frame.type === 'message') {
      say(conn, state, frame.content, frame.ref);
    } else {
      error(conn, 'bad_frame', 'unknown frame type', frame.ref);
    }
  });
  conn.on('close', () => leave(conn, state));
});

const port = Number(process.argv[2] || process.env.PORT || 0);
const host = process.env.HOST || '127.0.0.1';
const server = http.createServer();
chat.installHandlers(server);
// The same listen backlog as Chatzilla's (chatzilla/__main__.py's
// LISTEN_BACKLOG): Node's default of 511 makes the kernel drop connection
// attempts when a crowd of 10,000 arrives at once, each retried a second or
// more later (bench/crowd.py's join storm), which would measure the backlog,
// not the server.
const LISTEN_BACKLOG = 4096;
server.listen({port, host, backlog: LISTEN_BACKLOG}, () => {
  console.log(`Node sockjs reference is serving http://${host}:${server.address().port}/`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
