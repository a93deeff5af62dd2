import { createServer } from 'node:http';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { announceListening } from '../target/child.js';
import { DeferredPublisher, modeFromArgs, publication, subscribeResult, TopicSequences, type PublishCall } from './publish-state.js';

/**
 * Socket.IO baseline (WebSocket transport only): echo, room broadcast, or idle. With REDIS_URL
 * (loopback) it uses the Redis adapter, so that two of these form a multi-node pair.
 */
const mode = modeFromArgs(process.argv);
const seqs = new TopicSequences();
const http = createServer();
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, maxHttpBufferSize: 1024 * 1024, serveClient: false });
const redisUrl = process.env.REDIS_URL;
const redis = redisUrl ? [new Redis(redisUrl), new Redis(redisUrl)] : [];
if (redis[0] && redis[1]) io.adapter(createAdapter(redis[0], redis[1]));
const publisher = new DeferredPublisher((topic, event) => io.to(topic).emit('event', event));

io.on('connection', (socket) => {
  socket.on('call', (text: string) => {
    if (mode === 'echo') {
      socket.emit('reply', text);
      return;
    }
    if (mode !== 'publish') return;
    const published = publication(JSON.parse(text) as PublishCall, seqs);
    if (!published) return;
    publisher.push(published.topic, published.event);
    socket.emit('reply', published.result);
  });
  socket.on('subscribe', (topic: string, ack?: (result: string) => void) => {
    void socket.join(topic);
    ack?.(subscribeResult(0, topic, seqs.current(topic)));
  });
});

http.listen(0, '127.0.0.1', () => {
  const address = http.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  announceListening(port, { redis: Boolean(redisUrl) }, async () => {
    io.close();
    for (const client of redis) client.disconnect();
  });
});
