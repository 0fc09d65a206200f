import { get, call, token } from '../api.js'
import { h, table, message, download } from '../dom.js'

// integrity: the chain head, the last anchor and its log entry, what is
// not anchored yet, coverage per stream, and "verify now".
export async function integrity() {
  const i = await get('/v1/integrity')
  const result = h('div', { 'aria-live': 'polite', 'data-testid': 'verify-result' })
  const verify = async (e) => {
    e.target.disabled = true
    result.replaceChildren(message('Verifying…'))
    try {
      const v = await call('POST', '/v1/integrity:verify', {})
      result.replaceChildren(v.verified
        ? message(`Verified: ${v.events} events, ${v.anchors} anchors; ${v.unanchored} not anchored yet.`)
        : message(`Verification failed at seq ${v.first_failure?.seq}: ${v.first_failure?.reason}` +
            ((v.projection_mismatches || []).length ? `; ${v.projection_mismatches.length} projection mismatches` : ''), 'error'))
    } catch (err) {
      result.replaceChildren(message(err.message, 'error'))
    }
    e.target.disabled = false
  }
  const saved = h('div', { 'aria-live': 'polite', 'data-testid': 'bundle-result' })
  const bundle = async (e) => {
    e.target.disabled = true
    saved.replaceChildren(message('Preparing the evidence bundle…'))
    try {
      const resp = await fetch('/v1/integrity/bundle', { headers: { Authorization: 'Bearer ' + token.get() } })
      if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).message || `HTTP ${resp.status}`)
      const text = await resp.text()
      download('ogma-evidence.bundle', text, 'application/x-ndjson')
      saved.replaceChildren(message(`Downloaded the evidence bundle (${text.split('\n').length - 1} lines). Check it anywhere with ogma verify.`))
    } catch (err) {
      saved.replaceChildren(message(err.message, 'error'))
    }
    e.target.disabled = false
  }
  return h('div', {},
    h('dl', { class: 'facts' },
      h('dt', {}, 'Chain head'), h('dd', {}, i.head ? `seq ${i.head.seq}, ${i.head.hash.slice(0, 16)}…` : 'no events yet'),
      h('dt', {}, 'Log'), h('dd', {}, i.log_configured ? i.log_url : 'none configured: nothing is anchored'),
      h('dt', {}, 'Last anchor'), h('dd', {}, i.last_anchor
        ? `#${i.last_anchor.index}, log entry ${i.last_anchor.log_index}, through seq ${i.last_anchor.seq}, ${i.last_anchor.integrated_time}`
        : 'none yet'),
      h('dt', {}, 'Not anchored yet'), h('dd', {}, `${i.unanchored} events`)),
    h('p', {}, h('button', { type: 'button', onclick: verify }, 'Verify now')), result,
    h('p', {}, h('button', { type: 'button', onclick: bundle, 'data-testid': 'bundle' }, 'Download the evidence bundle')), saved,
    table('Coverage per stream (settled buckets with a manifest)', [
      { title: 'Stream', value: (c) => `${c.vendor} ${c.stream}` },
      { title: 'Buckets', num: true, value: (c) => c.buckets },
      { title: 'From', value: (c) => c.first_bucket },
      { title: 'To', value: (c) => c.last_bucket },
    ], i.coverage || []))
}
