import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run build` writes web/dist, which is committed and embedded into cmd/maoga (web/embed.go).
// `npm run dev` proxies the API and Socket.IO to a server on :8080 (make run).
const target = process.env.MAOGA_URL || 'http://localhost:8080';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true },
  server: {
    proxy: {
      '/api': target,
      '/socket.io': { target, ws: true },
    },
  },
});
