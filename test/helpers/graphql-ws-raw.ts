import WebSocket from 'ws';

/**
 * A graphql-ws (graphql-transport-ws) socket spoken raw, acknowledged with `payload` as
 * `connection_init`'s: `next()` takes the server's messages one at a time, in order. No client
 * library: a test sends what one would refuse to (variables too deep to serialise) and sees
 * every message as sent.
 */
export async function openRawGraphqlWs(baseUrl: string, payload: Record<string, unknown>): Promise<{ socket: WebSocket; next: () => Promise<any> }> {
  const socket = new WebSocket(`${baseUrl.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: any[] = [];
  let wake: (() => void) | null = null;
  socket.on('message', (data: Buffer) => {
    messages.push(JSON.parse(data.toString()));
    wake?.();
  });
  const next = async () => {
    while (messages.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return messages.shift();
  };
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init', payload }));
  const ack = await next();
  if (ack?.type !== 'connection_ack') throw new Error(`graphql-ws: expected connection_ack, got ${JSON.stringify(ack)}`);
  return { socket, next };
}
