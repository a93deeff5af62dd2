import { callsJob } from './jobs/calls.js';
import { chatJob } from './jobs/chat.js';
import { connectJob } from './jobs/connect.js';
import { fanoutJob } from './jobs/fanout.js';
import type { FromWorker, Job, JobSpec, RelaySender, ToWorker } from './protocol.js';

/** Entry of a load-generator worker process (forked by pool.ts); does what the coordinator says. */
const factories: Record<JobSpec['kind'], (spec: JobSpec<never>, relay: RelaySender) => Job> = {
  connect: connectJob,
  calls: callsJob,
  fanout: fanoutJob,
  chat: chatJob,
};

const send = (message: FromWorker) => process.send?.(message);
let job: Job | null = null;
let progressTimer: NodeJS.Timeout | null = null;

function fail(error: unknown): void {
  send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
}

process.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'setup':
      try {
        job = factories[message.job.kind](message.job as JobSpec<never>, (data) => send({ type: 'relay', data }));
      } catch (error) {
        fail(error);
        return;
      }
      job.setup().then(() => send({ type: 'ready' }), fail);
      return;
    case 'start':
      progressTimer = setInterval(() => job && send({ type: 'progress', counters: job.progress() }), 1000);
      job!.run(message.durationMs).then((output) => send({ type: 'ran', output }), fail);
      return;
    case 'finish':
      if (progressTimer) clearInterval(progressTimer);
      job!.finish(message.input).then((result) => {
        send({ type: 'result', result });
        job?.close();
      }, fail);
      return;
    case 'relay':
      job?.onRelay?.(message.data);
      return;
  }
});

// The coordinator went away: never keep connections open on our own.
process.on('disconnect', () => {
  job?.close();
  process.exit(0);
});
