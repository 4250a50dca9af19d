// REST client for /api (shared/design/REST.md): the {data} / {error} envelope, the bearer token, and one
// refresh of the access token when the server answers 401 (the new tokens reach the session listeners,
// which reconnect the socket with them).
const SESSION_KEY = 'maoga.session';

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

let session = readStored();
const sessionListeners = new Set();
let refreshing = null;

function readStored() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null;
  } catch {
    return null;
  }
}

export function getSession() {
  return session;
}

// setSession stores { user, accessToken, refreshToken } (null logs out) and tells the listeners.
export function setSession(next) {
  session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
  sessionListeners.forEach((cb) => cb(next));
}

export function onSession(cb) {
  sessionListeners.add(cb);
  return () => sessionListeners.delete(cb);
}

// refreshTokens trades the refresh token for a new pair; concurrent callers share one request.
export function refreshTokens() {
  if (!session?.refreshToken) return Promise.reject(new ApiError(401, 'UNAUTHORIZED', 'Not logged in'));
  if (!refreshing) {
    const { refreshToken } = session;
    refreshing = send('POST', '/auth/refresh', { refreshToken }, null)
      .then(({ data }) => {
        setSession({ ...session, accessToken: data.accessToken, refreshToken: data.refreshToken });
        return data.accessToken;
      })
      .catch((err) => {
        if (err.status === 401) setSession(null); // the refresh token is gone: log in again
        throw err;
      })
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

async function send(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`/api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return null;
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON: reported below by status
  }
  if (!res.ok) {
    const e = json?.error || {};
    throw new ApiError(res.status, e.code, e.message, e.details);
  }
  return json;
}

// api(method, path, body) answers the whole envelope ({ data, nextCursor? }).
export async function api(method, path, body) {
  try {
    return await send(method, path, body, session?.accessToken);
  } catch (err) {
    if (err.status !== 401 || !session?.refreshToken || path.startsWith('/auth/')) throw err;
    await refreshTokens();
    return send(method, path, body, session?.accessToken);
  }
}

export async function register(fields) {
  const { data } = await send('POST', '/auth/register', fields, null);
  setSession(data);
  return data;
}

export async function login(loginName, password) {
  const { data } = await send('POST', '/auth/login', { login: loginName, password }, null);
  setSession(data);
  return data;
}

export function logout() {
  setSession(null);
}

// userName resolves a user id to a display name once (lobby members and friend requests carry ids only).
const names = new Map();
export function userName(id) {
  if (!names.has(id)) {
    names.set(
      id,
      api('GET', `/users/${id}`)
        .then(({ data }) => data.displayName || data.username)
        .catch((err) => {
          names.delete(id);
          throw err;
        }),
    );
  }
  return names.get(id);
}
