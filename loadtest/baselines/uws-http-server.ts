import { announceListening } from '../target/child.js';
import { uWS, uws } from '../../src/transport/uws.js';

/**
 * Raw uWS HTTP baseline for the `rest` scenario: every GET is answered with the same JSON body
 * (the gateway's own answer to the measured request, passed in HTTP_BASELINE_BODY) and the same
 * headers the gateway sends, in one corked write. What HTTP itself costs on this machine.
 */
if (!uws.native) {
  process.send?.({ type: 'failed', error: `uWS is not native (${uws.detail}): refusing to serve as a baseline` });
  process.exit(1);
}

const body = process.env.HTTP_BASELINE_BODY ?? '{"success":true}';
let requestCount = 0;
const app = uWS.App();

app.get('/*', (res) => {
  res.cork(() => {
    res.writeStatus('200 OK');
    res.writeHeader('content-type', 'application/json; charset=utf-8');
    res.writeHeader('x-request-id', `req_${++requestCount}`);
    res.end(body);
  });
});

app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) {
    process.send?.({ type: 'failed', error: 'could not listen' });
    process.exit(1);
  }
  announceListening(uWS.us_socket_local_port(socket), { native: uws.native, detail: uws.detail }, () => uWS.us_listen_socket_close(socket));
});
