// The worker_threads entry of step-worker.ts: tsx's loader registered in the worker first.
import { register } from 'tsx/esm/api';

register();
await import('./step-worker.ts');
