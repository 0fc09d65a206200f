import { get, query } from '../api.js'
import { h, table, usd, num, day, message } from '../dom.js'

const pct = (v) => (v * 100).toFixed(1) + ' %'

// insights: the month's forecast with its interval, model-mix shifts,
// project attribution and reconciliation.
export async function insights() {
  const w = { start: day(-30), end: day(1) }
  const [fc, mix, projects, rec] = await Promise.all([
    get('/v1/insights/forecast'),
    get('/v1/insights/model-mix?' + query(w)),
    get('/v1/insights/projects?' + query(w)),
    get('/v1/insights/reconciliation?' + query({ start: day(-14), end: day(1) })),
  ])
  const gaps = rec.days.filter((d) => Number(d.gap_usd) !== 0)
  return h('div', {},
    h('section', {}, h('h2', {}, `Forecast, ${fc.month}`), table('Month-end spend per vendor', [
      { title: 'Vendor', value: (v) => v.vendor },
      { title: 'Spent so far', num: true, value: (v) => usd(v.spent_to_date) },
      { title: 'Forecast', num: true, value: (v) => usd(v.forecast_total) },
      { title: '80 % interval', value: (v) => `${usd(v.low)} – ${usd(v.high)}` },
      { title: 'Method', value: (v) => v.method },
    ], fc.vendors || [], { testid: 'forecast-table' })),
    h('section', {}, h('h2', {}, 'Model mix'), table(`Share of tokens, ${mix.previous_start} → ${w.end}`, [
      { title: 'Model', value: (m) => `${m.model} (${m.vendor})` },
      { title: 'Tokens', num: true, value: (m) => num(m.tokens) },
      { title: 'Share now', num: true, value: (m) => pct(m.token_share) },
      { title: 'Share before', num: true, value: (m) => pct(m.previous_token_share) },
      { title: 'Shift', num: true, value: (m) => (m.token_shift >= 0 ? '+' : '') + pct(m.token_shift) },
    ], (mix.models || []).slice(0, 12))),
    h('section', {}, h('h2', {}, 'Project attribution'), table('Spend per project, last 30 days', [
      { title: 'Project', value: (p) => `${p.name || p.project || '(default)'} (${p.vendor})` },
      { title: 'Billed', num: true, value: (p) => usd(p.billed_usd) },
      { title: 'Share', num: true, value: (p) => pct(p.billed_share) },
      { title: 'Estimated', num: true, value: (p) => usd(p.estimated_cost_usd) },
      { title: 'Top people', value: (p) => (p.people || []).slice(0, 3).map((x) => `${x.email} ${pct(x.share)}`).join(', ') || '—' },
    ], projects.projects || [])),
    h('section', {}, h('h2', {}, 'Reconciliation'),
      gaps.length === 0 ? message('Estimates match the bills of the last 14 days.') : table('Days where the bill and the estimate differ', [
        { title: 'Day', value: (d) => d.day },
        { title: 'Project', value: (d) => `${d.project || '(default)'} (${d.vendor})` },
        { title: 'Estimated', num: true, value: (d) => usd(d.estimated_usd) },
        { title: 'Billed', num: true, value: (d) => usd(d.billed_usd) },
        { title: 'Gap', num: true, value: (d) => usd(d.gap_usd) },
        { title: 'Known causes', value: (d) => d.causes.join(', ') || 'none known' },
      ], gaps)))
}
