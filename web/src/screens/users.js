import { get, allPages, query } from '../api.js'
import { h, table, num, usd, day } from '../dom.js'

const window30 = () => ({ start: day(-30), end: day(1) })

// users is the Users screen: one row per person across vendors.
export async function users() {
  const { items } = await allPages('/v1/people', window30(), 'people')
  items.sort((a, b) => Number(b.estimated_cost_usd) - Number(a.estimated_cost_usd) || a.email.localeCompare(b.email))
  const columns = [
    { title: 'Person', value: (p) => h('a', { href: '#/users/' + encodeURIComponent(p.id) }, p.email) },
    { title: 'Vendors', value: (p) => [...new Set(p.subjects.map((s) => s.vendor))].join(', ') },
    { title: 'Tokens', num: true, value: (p) => num(Number(p.input_total) + Number(p.output)) },
    { title: 'Estimated cost', num: true, value: (p) => usd(p.estimated_cost_usd) },
    { title: 'Billed, attributed', num: true, value: (p) => usd(p.billed_attributed_usd) },
    { title: 'Last active', value: (p) => p.last_active || '—' },
  ]
  return h('div', {}, h('p', {}, `${items.length} people, usage of the last 30 days.`),
    table('People across vendors', columns, items, { testid: 'people-table' }))
}

// person is one person's page.
export async function person(id) {
  const p = await get('/v1/people/' + encodeURIComponent(id) + '?' + query(window30()))
  const mix = Object.entries(p.attribution_mix || {}).map(([k, v]) => `${k} ${(v * 100).toFixed(0)} %`).join(', ')
  return h('div', {},
    h('h2', {}, p.email),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Tokens, last 30 days'), h('dd', {}, num(Number(p.input_total) + Number(p.output))),
      h('dt', {}, 'Estimated cost'), h('dd', {}, usd(p.estimated_cost_usd) + (p.unpriced ? ' (partly unpriced)' : '')),
      h('dt', {}, 'Billed cost attributed'), h('dd', {}, usd(p.billed_attributed_usd)),
      h('dt', {}, 'Last active'), h('dd', {}, p.last_active || '—'),
      h('dt', {}, 'Projects'), h('dd', {}, (p.projects || []).join(', ') || '—'),
      h('dt', {}, 'Attribution'), h('dd', {}, mix || '—')),
    table('Vendor accounts and keys', [
      { title: 'Vendor', value: (s) => s.vendor },
      { title: 'Kind', value: (s) => s.kind },
      { title: 'Id', value: (s) => s.id },
      { title: 'Attributed as', value: (s) => s.attribution + (s.linked ? ' (linked)' : '') },
      { title: 'In the directory', value: (s) => (s.deleted ? 'deleted' : 'yes') },
    ], p.subjects),
    table('Per vendor', [
      { title: 'Vendor', value: (v) => v.vendor },
      { title: 'Tokens', num: true, value: (v) => num(Number(v.input_total) + Number(v.output)) },
      { title: 'Estimated cost', num: true, value: (v) => usd(v.estimated_cost_usd) },
      { title: 'Billed, attributed', num: true, value: (v) => usd(v.billed_attributed_usd) },
    ], p.vendors || []),
    h('p', {}, h('a', { href: '#/users' }, '← All people')))
}
