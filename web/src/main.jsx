import { createRoot } from 'react-dom/client';
import App from './App';
import socketService from './services/socketService';
import './styles.css';

// For the browser tests and for poking at the socket from the console.
window.maogaSocket = socketService;

createRoot(document.getElementById('root')).render(<App />);
