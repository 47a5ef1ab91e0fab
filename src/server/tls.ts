// TLS for a node: the files an operator gives (--tls-key, --tls-cert,
// --tls-ca), checked up front so a mistake is a clear refusal at start-up
// rather than uWS's "App construction failed" or a cluster that cannot talk.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PeerTlsOptions } from '../transport/ws-transport.js';

export interface ServerTlsFiles {
  /** PEM private key of this node. */
  keyFile: string;
  /** PEM certificate of this node (its chain may follow), naming the host of its advertised address. */
  certFile: string;
  /**
   * PEM CA certificate(s) of the cluster: peers' certificates are verified
   * against it, both ways (the server asks connecting peers for theirs, and
   * refuses one this CA did not sign). Default: Node's trusted roots on
   * outbound connections, and no client certificates asked for inbound.
   */
  caFile?: string;
}

export interface LoadedTls {
  /** For uWS.SSLApp. */
  app: { key_file_name: string; cert_file_name: string; ca_file_name?: string };
  /** For the outbound peer connections (WsTransport). */
  peer: PeerTlsOptions;
  /** The certificate's subject and expiry, for the start-up log. */
  subject: string;
  validTo: string;
}

export class TlsConfigError extends Error {
  override readonly name = 'TlsConfigError';
}

function read(what: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsConfigError(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
  }
}

/** Reads and checks the files: a key, a certificate that belongs to it and is valid now, a CA that parses. */
export function loadTls(files: ServerTlsFiles, now = new Date()): LoadedTls {
  const keyPem = read('key', files.keyFile);
  const certPem = read('certificate', files.certFile);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new TlsConfigError(`${files.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new TlsConfigError(`${files.keyFile} is not a PEM private key (an encrypted key is not supported): ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(key)) throw new TlsConfigError(`the certificate ${files.certFile} does not belong to the key ${files.keyFile}`);
  if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) {
    throw new TlsConfigError(`the certificate ${files.certFile} is not valid now (valid from ${cert.validFrom} to ${cert.validTo})`);
  }
  let caPem: Buffer | undefined;
  if (files.caFile !== undefined) {
    caPem = read('CA', files.caFile);
    try {
      const ca = new X509Certificate(caPem);
      if (!ca.ca) throw new Error('it is not a CA certificate (basicConstraints CA:TRUE)');
    } catch (err) {
      throw new TlsConfigError(`${files.caFile} is not a PEM CA certificate: ${(err as Error).message}`);
    }
  }
  return {
    app: { key_file_name: files.keyFile, cert_file_name: files.certFile, ...(files.caFile === undefined ? {} : { ca_file_name: files.caFile }) },
    peer: { key: keyPem, cert: certPem, ...(caPem === undefined ? {} : { ca: caPem }) },
    subject: cert.subject.replace(/\n/g, ', '),
    validTo: cert.validTo,
  };
}
