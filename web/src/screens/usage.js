import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { allPages } from '../api.js'
import { h, table, message, num, usd, day, field, download } from '../dom.js'

// The filter stays while the session lasts, so that leaving and coming
// back shows the same view.
const state = { start: day(-30), end: day(1), vendor: 'all', by: 'model' }

const dims = [
  ['model', 'Model'], ['vendor', 'Vendor'], ['person', 'Person'], ['project', 'Project'],
  ['usage_type', 'Usage type'], ['api_key', 'API key'],
]

// usage is the API Usage screen: tokens and estimated cost over time,
// stacked by a dimension, and a table with CSV export; provisional and
// not-yet-complete data marked.
export async function usage() {
  const start = h('input', { type: 'date', value: state.start, required: true })
  const end = h('input', { type: 'date', value: state.end, required: true })
  const vendor = h('select', {}, [['all', 'All'], ['openai', 'OpenAI'], ['anthropic', 'Anthropic']].map(([v, t]) =>
    h('option', { value: v, selected: v === state.vendor }, t)))
  const by = h('select', {}, dims.map(([v, t]) => h('option', { value: v, selected: v === state.by }, t)))
  const out = h('div', { 'aria-live': 'polite' })
  const apply = async () => {
    Object.assign(state, { start: start.value, end: end.value, vendor: vendor.value, by: by.value })
    out.replaceChildren(message('Loading…'))
    try {
      out.replaceChildren(await report())
    } catch (err) {
      out.replaceChildren(message(err.message, 'error'))
    }
  }
  const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); apply() } },
    field('From', start), field('To (exclusive)', end), field('Vendor', vendor), field('Group by', by),
    h('button', { type: 'submit' }, 'Apply'))
  vendor.addEventListener('change', apply)
  await apply()
  return h('div', {}, form, out)
}

const label = (r) => (state.by === 'person' ? r.person || '(no one)' : r[state.by] || '(none)')

async function report() {
  const params = { start: state.start, end: state.end, vendor: state.vendor, page_size: 10000 }
  const [{ items: rows, last }, { items: daily }] = await Promise.all([
    allPages('/v1/usage', { ...params, group_by: state.by }, 'rows'),
    allPages('/v1/usage', { ...params, group_by: 'day,' + state.by }, 'rows'),
  ])
  const people = state.by === 'person' ? await names() : {}
  const name = (r) => (state.by === 'person' ? people[r.person] || label(r) : label(r))
  const total = rows.reduce((t, r) => ({
    input: t.input + Number(r.input_total), output: t.output + Number(r.output),
    usd: t.usd + Number(r.estimated_cost_usd), unpriced: t.unpriced || r.unpriced,
  }), { input: 0, output: 0, usd: 0, unpriced: false })
  const through = last.complete_through
  const notes = []
  if (through && through.slice(0, 10) < state.end) {
    notes.push(message(`Settled through ${through.slice(0, 10)}: later days are provisional and may still change.`, 'warn'))
  }
  if (rows.some((r) => r.provisional)) notes.push(message('Rows marked “provisional” come from buckets that are still open.', 'warn'))
  if (total.unpriced) notes.push(message('Some usage is of a model or unit the price table does not price: its estimate is a lower bound.', 'warn'))
  const summary = h('p', { class: 'totals', 'data-testid': 'usage-total' },
    h('strong', {}, num(total.input + total.output)), ' tokens (', num(total.input), ' in, ', num(total.output), ' out), ',
    h('strong', {}, usd(total.usd)), ' estimated at list price')
  const columns = [
    { title: dims.find(([v]) => v === state.by)[1], value: name },
    { title: 'Input tokens', num: true, value: (r) => num(r.input_total) },
    { title: 'Output tokens', num: true, value: (r) => num(r.output) },
    { title: 'Requests', num: true, value: (r) => num(r.requests) },
    { title: 'Other units', value: (r) => units(r) },
    { title: 'Estimated cost', num: true, value: (r) => usd(r.estimated_cost_usd) + (r.unpriced ? ' +' : '') },
    { title: 'State', value: (r) => (r.provisional ? 'provisional' : 'settled') },
  ]
  const csv = () => download(`ogma-usage-${state.start}-${state.end}.csv`, toCSV(rows, name))
  const tokens = (r) => Number(r.input_total) + Number(r.output)
  const cost = (r) => Number(r.estimated_cost_usd)
  return h('div', {}, summary, notes,
    h('div', { class: 'charts' }, chart(daily, name, tokens, 'Tokens per day'), chart(daily, name, cost, 'Estimated cost per day, USD')),
    h('p', {}, h('button', { type: 'button', onclick: csv }, 'Export CSV')),
    table(`Usage by ${state.by}, ${state.start} to ${state.end}`, columns, rows,
      { testid: 'usage-table', rowClass: (r) => (r.provisional ? 'provisional' : '') }))
}

const unitNames = ['images', 'characters', 'seconds', 'bytes', 'sessions', 'calls']
const units = (r) => unitNames.filter((u) => Number(r[u])).map((u) => `${num(r[u])} ${u}`).join(', ')

// names maps person ids to emails, for the person grouping.
async function names() {
  const { items } = await allPages('/v1/people', { start: state.start, end: state.end }, 'people')
  return Object.fromEntries(items.map((p) => [p.id, p.email]))
}

function toCSV(rows, name) {
  const cols = ['input_total', 'input_uncached', 'input_cache_read', 'input_cache_write_5m', 'input_cache_write_1h', 'output',
    'requests', ...unitNames, 'estimated_cost_usd', 'unpriced', 'price_version', 'provisional']
  const esc = (v) => (/[",\n]/.test(String(v)) ? '"' + String(v).replaceAll('"', '""') + '"' : String(v))
  return [[state.by, ...cols].join(','), ...rows.map((r) => [name(r), ...cols.map((c) => r[c] ?? '')].map(esc).join(','))].join('\n') + '\n'
}

// chart draws value per day, stacked by the top groups (the rest as one).
function chart(daily, name, value, caption) {
  const days = [...new Set(daily.map((r) => r.day))].sort()
  if (days.length < 2) return h('p', { class: 'msg' }, 'Not enough days to chart.')
  const totals = {}
  for (const r of daily) totals[name(r)] = (totals[name(r)] || 0) + value(r)
  const top = Object.keys(totals).sort((a, b) => totals[b] - totals[a]).slice(0, 6)
  const series = [...top, ...(Object.keys(totals).length > top.length ? ['other'] : [])]
  const at = Object.fromEntries(days.map((d, i) => [d, i]))
  const data = series.map(() => days.map(() => 0))
  for (const r of daily) {
    const s = top.includes(name(r)) ? top.indexOf(name(r)) : series.length - 1
    data[s][at[r.day]] += value(r)
  }
  for (let s = 1; s < data.length; s++) for (let i = 0; i < days.length; i++) data[s][i] += data[s - 1][i] // stacked
  // Six-digit colours: the fills append an alpha, and '#555' + '33' is no colour at all (the chart then drew nothing but the top line).
  const colors = ['#1f5fa8', '#b3541e', '#2e7d32', '#6a3fa0', '#a61d4b', '#00707a', '#555555']
  const box = h('figure', { class: 'chart' }, h('figcaption', {}, `${caption}, stacked by ${state.by}`))
  const plot = new uPlot({
    width: Math.min(900, (document.getElementById('main').clientWidth || 900) - 16), height: 260,
    series: [{}, ...series.map((s, i) => ({ label: s, stroke: colors[i % colors.length], fill: colors[i % colors.length] + '33' }))],
    axes: [{}, { size: 90 }],
    scales: { x: { time: true } },
  }, [days.map((d) => Date.parse(d) / 1000), ...data], box)
  box.plot = plot
  return box
}
