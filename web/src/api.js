// The console calls only the public REST API, with the tenant's token,
// which stays in this browser session (sessionStorage) and is never sent
// anywhere but the Authorization header of these calls.

const key = 'ogma.token'

export const token = {
  get: () => sessionStorage.getItem(key) || '',
  set: (t) => sessionStorage.setItem(key, t),
  clear: () => sessionStorage.removeItem(key),
}

// ApiError carries the API's stable code and sentence.
export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`)
    this.status = status
    this.code = body.code || 'http_' + status
    this.requestId = body.request_id || ''
  }
}

// call sends one request and returns the decoded answer.
export async function call(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token.get() }
  const init = { method, headers }
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body)
  }
  const resp = await fetch(path, init)
  let data = {}
  try {
    data = await resp.json()
  } catch {
    // an empty or non-JSON body: the status says enough
  }
  if (!resp.ok) throw new ApiError(resp.status, data)
  return data
}

export const get = (path) => call('GET', path)

// query builds a query string of the parameters that are set.
export function query(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '' && v !== null) q.set(k, v)
  return q.toString()
}

// allPages fetches every page of a paged list: the items of field, and the
// last page (for what it says of the whole, such as complete_through).
export async function allPages(path, params, field) {
  let items = []
  let page
  let pageToken = ''
  do {
    page = await get(path + '?' + query({ ...params, page_token: pageToken }))
    items = items.concat(page[field] || [])
    pageToken = page.next_page_token || ''
  } while (pageToken)
  return { items, last: page }
}
