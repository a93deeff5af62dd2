import { announceListening } from '../target/child.js';
import { uWS, uws } from '../../src/transport/uws.js';
import { DeferredPublisher, modeFromArgs, publication, subscribeResult, TopicSequences, type PublishCall } from './publish-state.js';

/**
 * Raw uWS baseline, the same package and socket settings as the gateway: `echo` answers every
 * frame with itself, `publish` does topic publish with per-topic seq, `idle` only holds sockets.
 */
const mode = modeFromArgs(process.argv);
if (!uws.native) {
  process.send?.({ type: 'failed', error: `uWS is not native (${uws.detail}): refusing to serve as a baseline` });
  process.exit(1);
}

const WELCOME = '{"type":"welcome"}';
const textDecoder = new TextDecoder();
const seqs = new TopicSequences();
const app = uWS.App();
const publisher = new DeferredPublisher((topic, event) => app.publish(topic, event, false));

app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1024 * 1024,
  maxBackpressure: 4 * 1024 * 1024,
  closeOnBackpressureLimit: 1,
  idleTimeout: 60,
  sendPingsAutomatically: true,
  open: (ws) => {
    ws.send(WELCOME, false);
  },
  message: (ws, message, isBinary) => {
    if (mode === 'echo') {
      ws.send(message, isBinary);
      return;
    }
    if (mode !== 'publish') return;
    const frame = JSON.parse(textDecoder.decode(message)) as PublishCall;
    if (frame.type === 'subscribe' && frame.topic) {
      ws.subscribe(frame.topic);
      ws.send(subscribeResult(frame.id, frame.topic, seqs.current(frame.topic)), false);
      return;
    }
    const published = publication(frame, seqs);
    if (!published) return;
    publisher.push(published.topic, published.event);
    ws.send(published.result, false);
  },
});

app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) {
    process.send?.({ type: 'failed', error: 'could not listen' });
    process.exit(1);
  }
  announceListening(uWS.us_socket_local_port(socket), { native: uws.native, detail: uws.detail }, () => uWS.us_listen_socket_close(socket));
});
