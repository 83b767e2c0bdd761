// The jose recipe (verify-token.js) against a real worker. Run by
// scripts/interop.sh with the environment every recipe test gets:
// INTEROP_ISSUER, INTEROP_JWKS_URI, INTEROP_AUDIENCE (the worker's);
// INTEROP_CLIENT_ID and INTEROP_ALG (the client the tokens are asked for
// under, and the algorithm the worker signs its tokens with); INTEROP_MINT (a
// command printing a fresh access token for that client);
// INTEROP_EXPIRED_TOKEN_FILE (a token of that client that expired more than
// INTEROP_LEEWAY_SECONDS ago, the leeway the tests give the verifiers).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { accessTokenVerifier } from './verify-token.js';

function env(name) {
  const v = process.env[name];
  assert.ok(v, `${name} is not set: run the recipes through \`make interop\``);
  return v;
}

const b64 = (s) => Buffer.from(s).toString('base64url');
const unb64 = (s) => Buffer.from(s, 'base64url').toString();
const redact = (t) => (t.length > 12 ? `${t.slice(0, 12)}...` : '<short token>');

function mint() {
  const token = execFileSync(env('INTEROP_MINT'), { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const { alg } = JSON.parse(unb64(token.split('.')[0]));
  assert.equal(alg, env('INTEROP_ALG'), `alg of a token minted for ${env('INTEROP_CLIENT_ID')}`);
  return token;
}

const expired = () => readFileSync(env('INTEROP_EXPIRED_TOKEN_FILE'), 'utf8').trim();

function tampered(token) {
  const [h, p, s] = token.split('.');
  const payload = unb64(p);
  const changed = payload.replace('"sub":"', '"sub":"x');
  assert.notEqual(changed, payload, 'the token has no sub to change');
  return [h, b64(changed), s].join('.');
}

function unsigned(token) {
  const { kid } = JSON.parse(unb64(token.split('.')[0]));
  return `${b64(JSON.stringify({ alg: 'none', typ: 'at+jwt', kid }))}.${token.split('.')[1]}.`;
}

function verifier({ audience = env('INTEROP_AUDIENCE'), clockTolerance = Number(env('INTEROP_LEEWAY_SECONDS')) } = {}) {
  return accessTokenVerifier({ jwksUri: env('INTEROP_JWKS_URI'), issuer: env('INTEROP_ISSUER'), audience, clockTolerance });
}

async function refused(verify, token, code) {
  await assert.rejects(verify(token), (err) => {
    assert.equal(err.code, code, `token ${redact(token)} refused for another reason: ${err}`);
    return true;
  }, `token ${redact(token)} accepted`);
}

test('accepts a genuine token', async () => {
  const token = mint();
  const claims = await verifier()(token);
  assert.ok(claims.sub, `no sub in ${redact(token)}`);
});

test('rejects a tampered token', async () => {
  await refused(verifier(), tampered(mint()), 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED');
});

test('rejects an unsigned token', async () => {
  await refused(verifier(), unsigned(mint()), 'ERR_JOSE_ALG_NOT_ALLOWED');
});

test('rejects an expired token only past the leeway', async () => {
  const token = expired();
  await refused(verifier(), token, 'ERR_JWT_EXPIRED');
  await verifier({ clockTolerance: 3600 })(token);
});

test('rejects a token for another audience', async () => {
  await refused(verifier({ audience: 'some-other-service' }), mint(), 'ERR_JWT_CLAIM_VALIDATION_FAILED');
});
