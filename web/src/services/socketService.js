// The documents' client SocketService (design doc 001, section 9.1), kept as written: the same
// socket.io-client options, the same method names and the same event names. What changed, and why:
//   - the server URL is this page's origin (the Go server serves the app and Socket.IO on one port);
//   - `?transport=polling` in the page URL forces `transports: ['polling']` (the fallback the
//     documents promise; the browser test uses it);
//   - listeners registered with on() are kept and attached again when connect() makes a new socket,
//     so a token refresh (which reconnects with the new token) keeps every component listening;
//   - a small connection-state feed (connecting / connected / reconnecting / disconnected) for the header, and
//     onAuthError for a handshake refused because the token expired (the app refreshes it then);
//   - the documents' "common event" handlers log at debug level instead of console.log.
import { io } from 'socket.io-client';

export const SERVER_URL = import.meta.env.VITE_SERVER_URL || window.location.origin;

// forcedTransports reads the page's query: ?transport=polling → ['polling'], ?transport=websocket → ['websocket'].
export function forcedTransports(search = window.location.search) {
  const t = new URLSearchParams(search).get('transport');
  return t === 'polling' || t === 'websocket' ? [t] : undefined;
}

class SocketService {
  constructor() {
    this.socket = null;
    this.events = {};
    this.state = 'disconnected';
    this.stateListeners = new Set();
    this.authErrorListeners = new Set();
  }

  // Connect to server (again, with a new token, when already connected).
  connect(token) {
    if (this.socket) {
      this.disconnect();
    }
    const transports = forcedTransports();
    this.socket = io(SERVER_URL, {
      auth: { token },
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 5000,
      reconnectionAttempts: Infinity,
      ...(transports ? { transports } : {}),
    });
    const socket = this.socket;

    // Set up connection events
    socket.on('connect', () => {
      console.log('Connected to server');
      this.setState('connected');
      this.emit('user:status', { status: 'online' });
    });

    socket.on('disconnect', (reason) => {
      console.log(`Disconnected: ${reason}`);
      // socket.active: the client will reconnect by itself (not a deliberate disconnect).
      this.setState(socket.active ? 'reconnecting' : 'disconnected');
    });

    socket.on('connect_error', (err) => {
      this.setState(socket.active ? 'reconnecting' : 'disconnected');
      // A handshake refused by the server's auth check is not retried by socket.io-client.
      if (!socket.active && /^Authentication error/.test(err.message)) {
        this.authErrorListeners.forEach((cb) => cb(err));
      }
    });
    socket.io.on('reconnect_attempt', () => this.setState('reconnecting'));

    socket.on('error', (error) => {
      console.error('Socket error:', error);
    });

    // Set up handling for common events
    this.setupEventHandlers();

    // Listeners registered before this socket existed (or on the previous socket).
    for (const [event, callbacks] of Object.entries(this.events)) {
      callbacks.forEach((cb) => socket.on(event, cb));
    }
    this.setState('connecting');
  }

  // Disconnect from server
  disconnect() {
    if (this.socket) {
      this.socket.disconnect();
      this.socket = null;
    }
    this.setState('disconnected');
  }

  // Send event to server
  emit(event, data) {
    if (this.socket && this.socket.connected) {
      this.socket.emit(event, data);
    } else {
      console.warn('Socket not connected, cannot emit event:', event);
    }
  }

  // Listen for event
  on(event, callback) {
    if (!this.events[event]) {
      this.events[event] = [];
    }

    this.events[event].push(callback);

    if (this.socket) {
      this.socket.on(event, callback);
    }

    return () => this.off(event, callback);
  }

  // Remove event listener
  off(event, callback) {
    if (this.socket) {
      this.socket.off(event, callback);
    }

    if (this.events[event]) {
      this.events[event] = this.events[event].filter((cb) => cb !== callback);
    }
  }

  // Connection state for the UI: 'connecting', 'connected', 'reconnecting' or 'disconnected'.
  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.stateListeners.forEach((cb) => cb(state));
  }

  onState(callback) {
    this.stateListeners.add(callback);
    return () => this.stateListeners.delete(callback);
  }

  onAuthError(callback) {
    this.authErrorListeners.add(callback);
    return () => this.authErrorListeners.delete(callback);
  }

  // Set up handlers for common events
  setupEventHandlers() {
    // Handle notifications
    this.socket.on('notification:new', (data) => {
      console.debug('New notification:', data);
    });

    this.socket.on('notification:count', (data) => {
      console.debug('Notification count:', data);
    });

    // Handle lobby events
    this.socket.on('lobby:update', (data) => {
      console.debug('Lobby update:', data);
    });

    // Handle user status events
    this.socket.on('user:status', (data) => {
      console.debug('User status update:', data);
    });

    // Handle matchmaking events
    this.socket.on('matchmaking:matched', (data) => {
      console.debug('Match found:', data);
    });
  }

  // Join a lobby
  joinLobby(lobbyId) {
    this.emit('lobby:join', { lobbyId });
  }

  // Leave a lobby
  leaveLobby(lobbyId) {
    this.emit('lobby:leave', { lobbyId });
  }

  // Join a chat
  joinChat(chatId) {
    this.emit('chat:join', { chatId });
  }

  // Send chat message
  sendMessage(chatId, content, contentType = 'text') {
    this.emit('chat:message', { chatId, content, contentType });
  }

  // Subscribe to matchmaking updates
  subscribeToMatchmaking(requestId) {
    this.emit('matchmaking:subscribe', { requestId });
  }
}

export default new SocketService();
