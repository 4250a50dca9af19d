// HS256 tokens signed here, the way the design documents' test/utils/socketClient.js does with
// jsonwebtoken (`jwt.sign({ id }, secret, { expiresIn })`), to test the handshake's token checks.

import { createHmac } from "node:crypto";
import { SETTINGS } from "./server.js";

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

export function signToken(claims, secret = SETTINGS.JWT_SECRET) {
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64(claims);
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** `{ id, iat, exp }` valid for `ttlSeconds` (negative: already expired). */
export function tokenFor(userId, ttlSeconds = 3600) {
  const now = Math.floor(Date.now() / 1000);
  const iat = ttlSeconds < 0 ? now + ttlSeconds - 60 : now;
  return signToken({ id: userId, iat, exp: now + ttlSeconds });
}
