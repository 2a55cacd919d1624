#!/usr/bin/env node
/*
 * A Sigstore instance on loopback for mlspec-attest's keyless tests.
 *
 * Serves the request handlers of @sigstore/mock (fake Fulcio with a CT log,
 * Rekor v1) with node's http module on 127.0.0.1, plus a stub OIDC discovery
 * document. Every start makes fresh keys, so two servers are two different
 * Sigstore instances (different CA, CT log and Rekor keys).
 *
 * When listening it prints ONE line of JSON on stdout:
 *   {"url": "http://127.0.0.1:PORT", "trustConfig": <ClientTrustConfig v0.1>}
 * and then serves until SIGTERM/SIGINT or until its stdin closes (so it cannot
 * outlive the test process that started it).
 *
 * Three adaptations make the handlers accept what sigstore-python 4.5 sends
 * (see ../../../docs/sigstore.md, "The loopback instance"):
 *   1. Fulcio: the OIDC token arrives as "Authorization: Bearer ..."; the handler
 *      reads it from credentials.oidcIdentityToken in the body.
 *   2. Fulcio: the CSR arrives as base64-encoded PEM; the handler wants PEM text.
 *   3. Rekor: for a "dsse" entry the handler logs whatever it is given; a real
 *      Rekor persists the envelope hash, payload hash and signatures with their
 *      verifier instead of the proposed content, and verifiers check that form.
 *
 * Usage: node server.js [--port N] [--subject-claim email|sub]
 */
'use strict';

const crypto = require('crypto');
const http = require('http');
const {
  fulcioHandler,
  initializeCA,
  initializeCTLog,
  initializeTLog,
  rekorHandler,
} = require('@sigstore/mock');

function parseArgs(argv) {
  const out = { port: 0, subjectClaim: 'email' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--port') out.port = Number(argv[++i]);
    else if (argv[i] === '--subject-claim') out.subjectClaim = argv[++i];
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return out;
}

function newKeyPair() {
  return crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

function sha256(data) {
  return crypto.createHash('sha256').update(data).digest();
}

// Adaptations 1 and 2: the Fulcio request as the mock handler expects it.
function fulcioBody(raw, authorization) {
  const request = JSON.parse(raw);
  const token = (authorization || '').replace(/^Bearer\s+/i, '');
  const csr = request.certificateSigningRequest;
  const pem = csr && !csr.startsWith('-----')
    ? Buffer.from(csr, 'base64').toString('utf8')
    : csr;
  return JSON.stringify({
    credentials: { oidcIdentityToken: token || request.credentials?.oidcIdentityToken },
    certificateSigningRequest: pem,
    publicKeyRequest: request.publicKeyRequest,
  });
}

// Adaptation 3: what Rekor persists for a proposed dsse v0.0.1 entry.
function rekorBody(raw) {
  const entry = JSON.parse(raw);
  if (entry.kind !== 'dsse' || !entry.spec || !entry.spec.proposedContent) {
    return raw;
  }
  const { envelope, verifiers } = entry.spec.proposedContent;
  const parsed = JSON.parse(envelope);
  if (!Array.isArray(verifiers) || verifiers.length !== 1) {
    throw new Error('expected exactly one verifier');
  }
  return JSON.stringify({
    apiVersion: entry.apiVersion,
    kind: 'dsse',
    spec: {
      envelopeHash: { algorithm: 'sha256', value: sha256(Buffer.from(envelope)).toString('hex') },
      payloadHash: {
        algorithm: 'sha256',
        value: sha256(Buffer.from(parsed.payload, 'base64')).toString('hex'),
      },
      signatures: parsed.signatures.map((s) => ({ signature: s.sig, verifier: verifiers[0] })),
    },
  });
}

function trustConfig(url, ca, ctlog, tlog) {
  const start = new Date(Date.now() - 60 * 60 * 1000).toISOString();
  const b64 = (buf) => Buffer.from(buf).toString('base64');
  const service = { url, majorApiVersion: 1, validFor: { start }, operator: 'sigstore.mock' };
  return {
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot: {
      mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
      tlogs: [
        {
          baseUrl: url,
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: b64(tlog.publicKey),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start },
          },
          logId: { keyId: b64(sha256(tlog.publicKey)) },
        },
      ],
      certificateAuthorities: [
        {
          subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
          uri: url,
          certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
          validFor: { start },
        },
      ],
      ctlogs: [
        {
          baseUrl: url,
          hashAlgorithm: 'SHA2_256',
          publicKey: {
            rawBytes: b64(ctlog.publicKey),
            keyDetails: 'PKIX_ECDSA_P256_SHA_256',
            validFor: { start },
          },
          logId: { keyId: b64(ctlog.logID) },
        },
      ],
      timestampAuthorities: [],
    },
    signingConfig: {
      mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
      caUrls: [service],
      oidcUrls: [service],
      rekorTlogUrls: [service],
      rekorTlogConfig: { selector: 'ANY' },
      tsaUrls: [],
      tsaConfig: { selector: 'ANY' },
    },
  };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, contentType) {
  res.writeHead(status, { 'Content-Type': contentType || 'text/plain' });
  res.end(body);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = http.createServer();
  await new Promise((resolve) => server.listen(args.port, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;

  const ctlog = await initializeCTLog(newKeyPair());
  const ca = await initializeCA(newKeyPair(), ctlog);
  const tlog = await initializeTLog(url, newKeyPair());
  const fulcio = fulcioHandler(ca, { subjectClaim: args.subjectClaim });
  const rekor = rekorHandler(tlog);
  const config = trustConfig(url, ca, ctlog, tlog);

  server.on('request', async (req, res) => {
    try {
      const path = new URL(req.url, url).pathname;
      if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
        return send(res, 200, JSON.stringify({
          issuer: url,
          authorization_endpoint: `${url}/auth`,
          token_endpoint: `${url}/token`,
          jwks_uri: `${url}/keys`,
        }), 'application/json');
      }
      if (req.method === 'GET' && path === '/trust-config') {
        return send(res, 200, JSON.stringify(config), 'application/json');
      }
      if (req.method === 'POST' && path === fulcio.path) {
        const body = fulcioBody(await readBody(req), req.headers.authorization);
        const out = await fulcio.fn(body);
        return send(res, out.statusCode, out.response, out.contentType);
      }
      if (req.method === 'POST' && path === rekor.path) {
        const out = await rekor.fn(rekorBody(await readBody(req)));
        return send(res, out.statusCode, out.response, out.contentType);
      }
      return send(res, 404, JSON.stringify({ message: `no route ${req.method} ${path}` }), 'application/json');
    } catch (e) {
      return send(res, 400, JSON.stringify({ message: String(e && e.message) }), 'application/json');
    }
  });

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(JSON.stringify({ url, trustConfig: config }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`sigstore mock failed to start: ${e && e.stack}\n`);
  process.exit(1);
});
