import { get, call } from '../api.js'
import { h, table, message, field } from '../dom.js'

const vendors = [
  { name: 'openai', title: 'OpenAI · Admin API', hint: 'an Admin key, sk-admin-…, from platform.openai.com → Organization → Admin keys' },
  { name: 'anthropic', title: 'Anthropic · Admin API', hint: 'an Admin key, sk-ant-admin01-…, from console.anthropic.com → Settings → Admin keys' },
]

// keyForm checks a key (the checklist, each item with its reason, before
// anything is saved), then connects it and follows the backfill. The key
// field is write-only: emptied once sent, never refilled or shown.
function keyForm(v, done) {
  const key = h('input', { type: 'password', autocomplete: 'off', required: true, 'aria-describedby': `${v.name}-key-error` })
  const error = h('p', { id: `${v.name}-key-error`, class: 'msg error field-error', role: 'alert', hidden: true })
  const result = h('div', { 'aria-live': 'polite' })
  let checked = ''
  const fail = (err) => {
    error.hidden = false
    error.textContent = `${err.code}: ${err.message}`
    error.dataset.code = err.code
  }
  const connect = async () => {
    try {
      const flags = await call('PUT', `/v1/integrations/${v.name}`, { admin_key: checked })
      checked = ''
      result.replaceChildren(checklist(flags), message('Connected. Reading the history…'), await backfill(v.name))
      done?.()
    } catch (err) {
      fail(err)
    }
  }
  const form = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault()
      error.hidden = true
      result.replaceChildren(message('Checking the key with the vendor…'))
      const value = key.value.trim()
      key.value = ''
      try {
        const flags = await call('POST', `/v1/integrations/${v.name}:validate`, { admin_key: value })
        checked = value
        result.replaceChildren(checklist(flags), h('button', { type: 'button', onclick: connect }, `Connect ${v.title.split(' ·')[0]}`))
      } catch (err) {
        result.replaceChildren()
        fail(err)
      }
    },
  }, h('h2', {}, v.title), h('p', {}, 'Paste ', v.hint, '. Ogma seals it at once and only ever reads with it.'),
  field('Admin key', key), error, h('button', { type: 'submit' }, 'Check key'), result)
  return form
}

function checklist(flags) {
  return h('ul', { class: 'checklist', 'data-testid': 'checklist' }, Object.entries(flags).map(([name, f]) =>
    h('li', { class: f.value ? 'yes' : 'no' }, h('strong', {}, `${f.value ? '✓' : '✗'} ${name}`), ' — ', f.reason || '')))
}

// backfill follows the history read so far until it is done.
async function backfill(vendor) {
  const progress = h('progress', { max: 100, value: 0, 'aria-label': 'Backfill progress' })
  const text = h('span', { 'data-testid': 'backfill' }, 'starting')
  const box = h('p', {}, progress, ' ', text)
  const poll = async () => {
    const i = await get(`/v1/integrations/${vendor}`)
    const b = i.backfill
    if (b && b.total) {
      progress.max = b.total
      progress.value = b.done
      text.textContent = b.done >= b.total ? 'Backfill done' : `${b.done} of ${b.total} days read`
      if (b.done >= b.total) return
    }
    // Until the screen is left: the box is shown once this function returns.
    if (box.isConnected || !shown) setTimeout(poll, 1000)
    shown ||= box.isConnected
  }
  let shown = false
  setTimeout(poll, 500)
  return box
}

// onboarding: the vendor cards, each with its key form.
export async function onboarding() {
  return h('div', { class: 'cards' }, vendors.map((v) => keyForm(v)))
}

// integrations is Settings → Integrations: per vendor its status, streams
// with their last poll and skipped reasons, replace key, disconnect.
export async function integrations() {
  const { integrations: list } = await get('/v1/integrations')
  return h('div', {}, list.map((i) => {
    const v = vendors.find((x) => x.name === i.vendor) || { name: i.vendor, title: i.vendor, hint: 'a key' }
    const status = h('div', { 'aria-live': 'polite' })
    const disconnect = async (e) => {
      const sure = e.target.dataset.sure === 'yes'
      if (!sure) {
        e.target.dataset.sure = 'yes'
        e.target.textContent = `Yes, disconnect ${i.vendor} and destroy its key`
        status.replaceChildren(message('Disconnecting stops reading from the vendor; the history stays. Press again to confirm.', 'warn'))
        return
      }
      try {
        await call('DELETE', `/v1/integrations/${i.vendor}`)
        status.replaceChildren(message('Disconnected.'))
      } catch (err) {
        status.replaceChildren(message(err.message, 'error'))
      }
    }
    return h('section', { class: 'integration' },
      h('h2', {}, v.title),
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', {}, i.connected ? i.status : 'not connected'),
        ...(i.connected ? [h('dt', {}, 'Key'), h('dd', {}, `${i.key_hint} (generation ${i.generation}, sealed ${i.sealed_at})`),
          h('dt', {}, 'Region'), h('dd', {}, i.region)] : []),
        ...(i.action ? [h('dt', {}, 'To do'), h('dd', {}, i.action)] : [])),
      i.connected ? table('Streams', [
        { title: 'Stream', value: (s) => s.stream },
        { title: 'Last poll', value: (s) => s.last_poll || 'not yet' },
        { title: 'Skipped', value: (s) => s.skipped || s.error || '—' },
      ], i.streams || []) : null,
      h('details', {}, h('summary', {}, i.connected ? 'Replace key' : 'Connect'), keyForm(v)),
      i.connected ? h('p', {}, h('button', { type: 'button', class: 'danger', onclick: disconnect }, `Disconnect ${i.vendor}`)) : null,
      status)
  }))
}
