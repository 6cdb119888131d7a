// Pure formatting helpers (no DOM), shared by every page and by the Node smoke check.

const intFormat = new Intl.NumberFormat("en-US");

export function fmtInt(n) {
  return n === null || n === undefined || Number.isNaN(Number(n)) ? "—" : intFormat.format(Number(n));
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function fmtPercent(fraction, digits = 1) {
  if (!Number.isFinite(fraction)) return "—";
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** Rounds to 4 decimals without trailing noise (0.1 + 0.2 → 0.3). */
export function round4(x) {
  return Number.isFinite(x) ? Number(x.toFixed(4)) : x;
}

/** "just now", "3 min ago", "2 h ago", "5 days ago", then the date. */
export function timeAgo(date, now = Date.now()) {
  const t = date instanceof Date ? date.getTime() : Date.parse(date);
  if (!Number.isFinite(t)) return "—";
  const sec = Math.round((now - t) / 1000);
  if (sec < 0) return "just now";
  if (sec < 45) return "just now";
  if (sec < 90) return "1 min ago";
  const min = Math.round(sec / 60);
  if (min < 60) return `${min} min ago`;
  const hours = Math.round(min / 60);
  if (hours < 24) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days < 31) return days === 1 ? "1 day ago" : `${days} days ago`;
  return new Date(t).toISOString().slice(0, 10);
}

/** A full local date for title attributes. */
export function fmtDate(date) {
  const t = Date.parse(date);
  if (!Number.isFinite(t)) return "";
  return new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** 75 → "1 min 15 s"; rough on purpose (an estimate). */
export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const hours = Math.floor(m / 60);
  return `${hours} h ${m % 60} min`;
}

export function fmtRate(perSecond) {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return "—";
  return perSecond >= 100 ? `${fmtInt(Math.round(perSecond))} files/s` : `${perSecond.toFixed(1)} files/s`;
}

/** "snake_case_code" → "Snake case code" for headings; codes themselves stay visible too. */
export function humanize(code) {
  const text = String(code ?? "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
