import { get, call, query } from '../api.js'
import { h, table, message, usd, num, day } from '../dom.js'

// unmapped is the Unmapped activity panel: keys whose usage no one is
// linked to, each with a link action that moves its activity to a person.
export async function unmapped() {
  const params = { start: day(-30), end: day(1) }
  const { keys } = await get('/v1/unmapped?' + query(params))
  const status = h('div', { 'aria-live': 'polite' })
  const linkForm = (k) => {
    const email = h('input', { type: 'email', required: true, placeholder: 'person@example.com', 'aria-label': `Email of the person holding ${k.name || k.api_key}` })
    if (k.owner_email) email.value = k.owner_email
    return h('form', {
      class: 'inline',
      onsubmit: async (e) => {
        e.preventDefault()
        try {
          const l = await call('PUT', '/v1/links', { subject_vendor: k.vendor, subject_kind: 'api_key', subject_id: k.api_key, email: email.value })
          status.replaceChildren(message(`Linked ${k.name || k.api_key} to ${l.email}: its activity is theirs now.`))
          e.target.closest('tr').remove()
        } catch (err) {
          status.replaceChildren(message(err.message, 'error'))
        }
      },
    }, email, h('button', { type: 'submit' }, 'Link'))
  }
  const withKey = keys.filter((k) => k.api_key)
  if (withKey.length === 0) return message('Every key’s activity is attributed to a person.')
  return h('div', {}, status, table('Keys whose usage no one is linked to (last 30 days)', [
    { title: 'Key', value: (k) => `${k.name || k.api_key} (${k.vendor})` },
    { title: 'Projects', value: (k) => h('span', { class: 'id' }, k.projects.join(', ') || '—') },
    { title: 'Holder', value: (k) => (k.owner_email ? `${k.owner_email} (inferred)` : k.owner_kind || 'unknown') },
    { title: 'Seen', value: (k) => h('span', { class: 'nowrap', title: `${k.first_seen} to ${k.last_seen}` }, `${k.first_seen.slice(5)} → ${k.last_seen.slice(5)}`) },
    { title: 'Tokens', num: true, value: (k) => num(Number(k.input_total) + Number(k.output)) },
    { title: 'Estimated cost', num: true, value: (k) => usd(k.estimated_cost_usd) },
    { title: 'Link to a person', value: linkForm },
  ], withKey, { testid: 'unmapped-table' }))
}
