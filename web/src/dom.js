// h makes an element: h('a', {href: '#/x'}, 'text', child…). Attributes
// starting with "on" are listeners; text children are text nodes, never
// HTML, so nothing the API returns is ever parsed as markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'class') el.className = v
    else el.setAttribute(k, v === true ? '' : v)
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

// table renders rows as an accessible table: a caption, column headers,
// and cells from each column's value function.
export function table(caption, columns, rows, opts = {}) {
  // A table wider than the screen scrolls in its own box, which the
  // keyboard reaches too.
  return h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', { 'data-testid': opts.testid },
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : '' }, c.title)))),
      h('tbody', {}, rows.map((r) => h('tr', { class: opts.rowClass ? opts.rowClass(r) : '' },
        columns.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c.value(r)) : h('td', { class: c.num ? 'num' : '' }, c.value(r)))))))))
}

// message shows an inline status: role=alert for errors.
export function message(text, kind = 'info') {
  return h('p', { class: 'msg ' + kind, role: kind === 'error' ? 'alert' : 'status' }, text)
}

// num formats an integer the API sends as a string.
export const num = (v) => Number(v || 0).toLocaleString('en-US')

// usd formats an exact decimal string for reading (the CSV keeps it exact).
export const usd = (v) => '$' + Number(v || 0).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })

// day returns the UTC date n days from today, as YYYY-MM-DD.
export function day(n = 0) {
  const d = new Date()
  d.setUTCHours(0, 0, 0, 0)
  d.setUTCDate(d.getUTCDate() + n)
  return d.toISOString().slice(0, 10)
}

// field makes a labelled input.
export function field(label, input) {
  const id = 'f-' + Math.random().toString(36).slice(2, 8)
  input.id = id
  return h('div', { class: 'field' }, h('label', { for: id }, label), input)
}

// download offers text as a file.
export function download(name, text, type = 'text/csv') {
  const a = h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name })
  document.body.append(a)
  a.click()
  a.remove()
}
