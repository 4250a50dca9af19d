// Register or log in (POST /api/auth/register | /api/auth/login).
import { useState } from 'react';
import { login, register } from '../services/api';

export default function AuthForm() {
  const [mode, setMode] = useState('register');
  const [fields, setFields] = useState({ username: '', email: '', password: '', displayName: '' });
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setFields({ ...fields, [k]: e.target.value });

  const submit = async (e) => {
    e.preventDefault();
    setError('');
    setBusy(true);
    try {
      if (mode === 'register') {
        const body = { username: fields.username, email: fields.email, password: fields.password };
        if (fields.displayName) body.displayName = fields.displayName;
        await register(body);
      } else {
        await login(fields.username, fields.password);
      }
    } catch (err) {
      const details = err.details ? ` (${Object.entries(err.details).map(([k, v]) => `${k}: ${v}`).join(', ')})` : '';
      setError(err.message + details);
      setBusy(false);
    }
  };

  return (
    <div className="auth">
      <h1>Maoga</h1>
      <div className="tabs">
        <button type="button" className={mode === 'register' ? 'active' : ''} onClick={() => setMode('register')}>
          Register
        </button>
        <button type="button" className={mode === 'login' ? 'active' : ''} onClick={() => setMode('login')}>
          Log in
        </button>
      </div>
      <form onSubmit={submit} className="panel">
        <label>
          {mode === 'register' ? 'Username' : 'Username or email'}
          <input name="username" value={fields.username} onChange={set('username')} autoComplete="username" required />
        </label>
        {mode === 'register' && (
          <>
            <label>
              Email
              <input name="email" type="email" value={fields.email} onChange={set('email')} required />
            </label>
            <label>
              Display name (optional)
              <input name="displayName" value={fields.displayName} onChange={set('displayName')} />
            </label>
          </>
        )}
        <label>
          Password
          <input
            name="password"
            type="password"
            value={fields.password}
            onChange={set('password')}
            autoComplete={mode === 'register' ? 'new-password' : 'current-password'}
            required
          />
        </label>
        <button type="submit" disabled={busy}>
          {mode === 'register' ? 'Create account' : 'Log in'}
        </button>
        {error && <p className="note error">{error}</p>}
      </form>
    </div>
  );
}
