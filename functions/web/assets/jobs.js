// Live import jobs: one 1-second poll loop for every job anyone on the page watches (a row and
// the import panel following the same job share one request), with rate and time left from
// successive samples.

import { getJob, isAbort } from "./api.js";

const TERMINAL = new Set(["completed", "completed_with_errors", "failed"]);
const POLL_MS = 1000;
const RATE_WINDOW_MS = 10000;

export const isTerminal = (status) => TERMINAL.has(status);

const jobs = new Map(); // job id → { subs:Set, samples:[], state, controller }
let timer = null;
let ticking = false;

/** Rate (files/s) over the last RATE_WINDOW_MS of samples, and seconds left at that rate. */
export function estimate(samples, job) {
  if (samples.length < 2 || !job?.progress) return { rate: null, eta: null };
  const last = samples[samples.length - 1];
  let first = samples[0];
  for (const sample of samples) {
    if (last.t - sample.t <= RATE_WINDOW_MS) {
      first = sample;
      break;
    }
  }
  const dt = (last.t - first.t) / 1000;
  if (dt <= 0) return { rate: null, eta: null };
  const rate = (last.done - first.done) / dt;
  const left = Math.max(0, (job.progress.files_total || 0) - (job.progress.files_done || 0));
  return { rate, eta: rate > 0 ? left / rate : null };
}

function publish(entry) {
  for (const fn of entry.subs) {
    try {
      fn(entry.state);
    } catch (err) {
      // A subscriber's bug must not stop the others or the loop; still surface it.
      setTimeout(() => {
        throw err;
      });
    }
  }
}

async function poll(jobId, entry) {
  entry.controller = new AbortController();
  try {
    const job = await getJob(jobId, entry.controller.signal);
    const now = Date.now();
    entry.samples.push({ t: now, done: job.progress?.files_done ?? 0 });
    while (entry.samples.length > 2 && now - entry.samples[0].t > RATE_WINDOW_MS * 2) entry.samples.shift();
    entry.state = { job, ...estimate(entry.samples, job), error: null, terminal: isTerminal(job.status) };
  } catch (err) {
    if (isAbort(err)) return;
    // A 404 never heals; anything else (network, 5xx) is retried on the next tick.
    entry.state = { ...entry.state, error: err, terminal: err.status === 404 || err.unauthorized || entry.state?.terminal };
  } finally {
    entry.controller = null;
  }
  publish(entry);
}

async function tick() {
  timer = null;
  if (ticking) return;
  ticking = true;
  const started = Date.now();
  const active = [...jobs.entries()].filter(([, e]) => e.subs.size && !e.state?.terminal);
  await Promise.all(active.map(([id, e]) => poll(id, e)));
  ticking = false;
  schedule(Math.max(0, POLL_MS - (Date.now() - started)));
}

function schedule(delay) {
  const anyActive = [...jobs.values()].some((e) => e.subs.size && !e.state?.terminal);
  if (anyActive && !timer && !ticking) timer = setTimeout(tick, delay);
}

/**
 * Calls `onUpdate({job, rate, eta, error, terminal})` at once if known, then every second
 * until the job is terminal or `signal` fires.
 */
export function watchJob(jobId, onUpdate, signal) {
  let entry = jobs.get(jobId);
  if (!entry) {
    entry = { subs: new Set(), samples: [], state: null, controller: null };
    jobs.set(jobId, entry);
  }
  entry.subs.add(onUpdate);
  if (entry.state) onUpdate(entry.state);
  signal?.addEventListener("abort", () => {
    entry.subs.delete(onUpdate);
    if (!entry.subs.size) {
      entry.controller?.abort();
      if (!entry.state?.terminal) jobs.delete(jobId); // stale samples would skew the next rate
    }
  }, { once: true });
  if (!entry.state) {
    // A new job is fetched now rather than at the next tick.
    if (timer) clearTimeout(timer);
    timer = null;
    schedule(0);
  } else if (!entry.state.terminal) {
    schedule(POLL_MS);
  }
}

/** Forget every job (sign-out). */
export function clearJobs() {
  for (const e of jobs.values()) e.controller?.abort();
  jobs.clear();
}
