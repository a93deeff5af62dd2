import { WebSocketServer, type WebSocket } from 'ws';
import { announceListening } from '../target/child.js';
import { DeferredPublisher, modeFromArgs, publication, subscribeResult, TopicSequences, type PublishCall } from './publish-state.js';

/** `ws` baseline: echo, loop publish over the topic's sockets, or idle. */
const mode = modeFromArgs(process.argv);
const seqs = new TopicSequences();
const topics = new Map<string, Set<WebSocket>>();
const publisher = new DeferredPublisher((topic, event) => {
  const bytes = Buffer.from(event); // encoded once, sent to every subscriber
  for (const socket of topics.get(topic) ?? []) socket.send(bytes, { binary: false });
});

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1024 * 1024 });
server.on('connection', (socket) => {
  socket.send('{"type":"welcome"}');
  const joined = new Set<string>();
  socket.on('close', () => {
    for (const topic of joined) topics.get(topic)?.delete(socket);
  });
  socket.on('message', (data, isBinary) => {
    if (mode === 'echo') {
      socket.send(data, { binary: isBinary });
      return;
    }
    if (mode !== 'publish') return;
    const frame = JSON.parse(String(data)) as PublishCall;
    if (frame.type === 'subscribe' && frame.topic) {
      let members = topics.get(frame.topic);
      if (!members) topics.set(frame.topic, (members = new Set()));
      members.add(socket);
      joined.add(frame.topic);
      socket.send(subscribeResult(frame.id, frame.topic, seqs.current(frame.topic)));
      return;
    }
    const published = publication(frame, seqs);
    if (!published) return;
    publisher.push(published.topic, published.event);
    socket.send(published.result);
  });
});
server.on('listening', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  announceListening(port, {}, () => new Promise<void>((resolve) => server.close(() => resolve())));
});
