import crypto from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** The StateSet document's snippet, unchanged. */
function verifyWebhookSignature(payload: string, signature: string, secret: string): boolean {
  const expectedSignature = crypto.createHmac('sha256', secret).update(payload).digest('hex');

  return crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expectedSignature));
}

export interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  body: { id: string; type: string; created_at: string; account_id: string; data: any };
  /** The status this receiver answered. */
  answered: number;
  /** Verified by the document's snippet (on the re-serialized body, as its Express handler does) and by standardwebhooks. */
  verified: { stateset: boolean; standard: boolean };
}

/**
 * A real HTTP receiver on loopback. `respond(request, n)` picks the status of the n-th request
 * (from 0); `hang` keeps requests unanswered. Every request is verified with the secret it is given.
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  secret = '';
  respond: (request: Received, n: number) => number | Promise<number> = () => 200;
  responseBody = 'ok';
  private server: Server | null = null;

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    receiver.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', async () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const body = JSON.parse(raw);
        const signature = String(req.headers['x-stateset-signature'] ?? '');
        let stateset: boolean;
        try {
          stateset = verifyWebhookSignature(JSON.stringify(body), signature, receiver.secret);
        } catch {
          stateset = false;
        }
        let standard: boolean;
        try {
          new Webhook(receiver.secret).verify(raw, {
            'webhook-id': String(req.headers['webhook-id']),
            'webhook-timestamp': String(req.headers['webhook-timestamp']),
            'webhook-signature': String(req.headers['webhook-signature']),
          });
          standard = true;
        } catch {
          standard = false;
        }
        const entry: Received = { headers: req.headers, raw, body, answered: 0, verified: { stateset, standard } };
        const n = receiver.received.length;
        receiver.received.push(entry);
        const status = await receiver.respond(entry, n);
        entry.answered = status;
        if (status < 0) return; // never answered
        res.writeHead(status, { 'content-type': 'text/plain' }).end(receiver.responseBody);
      });
    });
    await new Promise<void>((resolve) => receiver.server!.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}/hooks`;
  }

  /** Requests answered 2xx, each event once (by webhook-id), in arrival order. */
  delivered(): Received[] {
    const seen = new Set<string>();
    return this.received.filter((r) => {
      if (r.answered < 200 || r.answered >= 300) return false;
      const id = String(r.headers['webhook-id']);
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

export { until } from './events.js';
