import './style.css'
import { token, get } from './api.js'
import { h, message, field } from './dom.js'
import { usage } from './screens/usage.js'
import { users, person } from './screens/users.js'
import { unmapped } from './screens/unmapped.js'
import { insights } from './screens/insights.js'
import { integrity } from './screens/integrity.js'
import { integrations, onboarding } from './screens/integrations.js'

// screens by route; each renders into the main element.
const screens = [
  { path: 'usage', title: 'API Usage', render: usage },
  { path: 'users', title: 'Users', render: users },
  { path: 'unmapped', title: 'Unmapped activity', render: unmapped },
  { path: 'insights', title: 'Insights', render: insights },
  { path: 'integrity', title: 'Integrity', render: integrity },
  { path: 'settings', title: 'Settings → Integrations', render: integrations },
  { path: 'onboarding', title: 'Onboarding', render: onboarding },
]

const main = document.getElementById('main')
const nav = document.getElementById('nav')

// A token in the fragment (#token=…, as `ogma dev` prints it) signs in at
// once; the fragment never reaches the server, and leaves the address bar.
function takeFragmentToken() {
  const m = location.hash.match(/^#token=([^&]+)/)
  if (!m) return
  token.set(decodeURIComponent(m[1]))
  history.replaceState(null, '', location.pathname + '#/usage')
}

function signIn() {
  nav.hidden = true
  const input = h('input', { type: 'password', autocomplete: 'off', required: true })
  const status = h('div', { 'aria-live': 'polite' })
  const form = h('form', {
    class: 'card',
    onsubmit: async (e) => {
      e.preventDefault()
      token.set(input.value.trim())
      try {
        await get('/me/capabilities')
        location.hash = '#/usage'
        route()
      } catch (err) {
        token.clear()
        status.replaceChildren(message(err.code === 'unauthenticated' ? 'That token is not valid.' : err.message, 'error'))
      }
    },
  },
  h('h1', {}, 'Sign in'),
  h('p', {}, 'Use an API token of your tenant (ogma token create). It stays in this browser tab only.'),
  field('API token', input), h('button', { type: 'submit' }, 'Sign in'), status)
  main.replaceChildren(form)
  input.focus()
}

function signOut() {
  token.clear()
  location.hash = ''
  signIn()
}

function renderNav(current) {
  nav.hidden = false
  nav.replaceChildren(h('ul', {},
    screens.map((s) => h('li', {}, h('a', { href: '#/' + s.path, 'aria-current': s.path === current ? 'page' : false }, s.title))),
    h('li', {}, h('button', { type: 'button', class: 'link', onclick: signOut }, 'Sign out'))))
}

async function route() {
  takeFragmentToken()
  if (!token.get()) return signIn()
  const [, path = 'usage', arg] = location.hash.match(/^#\/([^/]*)\/?(.*)$/) || []
  const screen = screens.find((s) => s.path === path) || screens[0]
  renderNav(screen.path)
  document.title = screen.title + ' · Ogma'
  main.replaceChildren(h('h1', {}, screen.title), h('p', { class: 'msg', role: 'status' }, 'Loading…'))
  try {
    const content = screen.path === 'users' && arg ? await person(decodeURIComponent(arg)) : await screen.render()
    main.replaceChildren(h('h1', {}, screen.title), content)
  } catch (err) {
    if (err.code === 'unauthenticated') return signOut()
    main.replaceChildren(h('h1', {}, screen.title), message(err.message + (err.requestId ? ` (request ${err.requestId})` : ''), 'error'))
  }
  main.focus()
}

window.addEventListener('hashchange', route)
route()
