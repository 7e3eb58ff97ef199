// How values of the API read on the page.
import { h } from './dom.js';

export const STATES = ['SCHEDULED', 'QUEUED', 'RUNNING', 'RETRYING', 'WAITING', 'SUCCEEDED', 'FAILED', 'CANCELED'];
export const FINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELED']);

export function stateName(state) {
  return String(state || '').replace(/^JOB_STATE_/, '') || 'UNKNOWN';
}

export function badge(state) {
  const name = stateName(state);
  return h('span', { class: `badge ${name}`, 'data-state': name }, name);
}

export function eventName(type) {
  return String(type || '').replace(/^JOB_EVENT_TYPE_/, '').toLowerCase().replaceAll('_', ' ');
}

// A job's kind as people name it: the task's name for a task.
export function jobKind(job) {
  const task = job.spec && job.spec.task;
  return task && task.name ? task.name : job.kind || '';
}

export function when(timestamp) {
  if (!timestamp) return '';
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? String(timestamp) : date.toLocaleString();
}

export function clock(timestamp) {
  if (!timestamp) return '';
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? String(timestamp) : date.toLocaleTimeString();
}

export function timeCell(timestamp) {
  return timestamp ? h('time', { datetime: timestamp }, when(timestamp)) : '';
}

// Seconds from a protojson Duration ("12.500s").
export function seconds(duration) {
  if (duration === undefined || duration === null || duration === '') return null;
  const value = parseFloat(String(duration));
  return Number.isFinite(value) ? value : null;
}

export function span(value) {
  if (value === null || value === undefined) return '';
  if (value < 1) return `${Math.round(value * 1000)} ms`;
  if (value < 90) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  if (value < 5400) return `${Math.round(value / 60)} min`;
  if (value < 172800) return `${(value / 3600).toFixed(1)} h`;
  return `${(value / 86400).toFixed(1)} d`;
}

export function between(start, end) {
  if (!start || !end) return null;
  return (new Date(end) - new Date(start)) / 1000;
}

export function count(value) {
  return Number(value || 0);
}

export function usd(value) {
  return `$${Number(value || 0).toFixed(4)}`;
}

export function json(value) {
  return JSON.stringify(value === undefined ? null : value, null, 2);
}

export function shortId(id) {
  return String(id || '').length > 14 ? `${String(id).slice(0, 12)}…` : String(id || '');
}
