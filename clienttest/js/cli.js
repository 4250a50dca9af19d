#!/usr/bin/env node
// A terminal Socket.IO client for trying the server by hand (README walk-through).
//
//   node clienttest/js/cli.js --token <accessToken> [--url http://localhost:8080] [--polling]
//
// Every event the server sends is printed as `<- event {json}`. Each line typed on stdin is
// `event {json payload}` and is emitted with an acknowledgement, whose answer is printed as `ack`.
import { io } from 'socket.io-client';
import readline from 'node:readline';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const url = opt('url', 'http://localhost:8080');
const token = opt('token', process.env.TOKEN);
if (!token) {
  console.error('usage: cli.js --token <accessToken> [--url URL] [--polling]');
  process.exit(2);
}

const socket = io(url, {
  auth: { token },
  transports: args.includes('--polling') ? ['polling'] : ['websocket'],
});
const show = (v) => JSON.stringify(v);

socket.on('connect', () => console.log(`connected as ${socket.id}`));
socket.on('connect_error', (err) => console.log(`connect_error: ${err.message}`));
socket.on('disconnect', (reason) => console.log(`disconnected: ${reason}`));
socket.onAny((event, ...payload) => console.log(`<- ${event} ${payload.map(show).join(' ')}`));

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  line = line.trim();
  if (!line) return;
  const space = line.indexOf(' ');
  const event = space < 0 ? line : line.slice(0, space);
  let payload = {};
  if (space >= 0) {
    try {
      payload = JSON.parse(line.slice(space + 1));
    } catch (err) {
      console.log(`not JSON: ${err.message}`);
      return;
    }
  }
  try {
    const ack = await socket.timeout(5000).emitWithAck(event, payload);
    console.log(`ack ${event} ${show(ack)}`);
  } catch (err) {
    console.log(`no ack for ${event}: ${err.message}`);
  }
});
rl.on('close', () => socket.close());
