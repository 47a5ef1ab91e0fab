// Test certificates made with the openssl command: a CA, and node
// certificates it signs for 127.0.0.1 (IP SAN) usable as TLS server and
// client certificates. Everything goes into a temporary directory.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export interface CertFiles {
  keyFile: string;
  certFile: string;
}

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file). */
  caFile: string;
  /** Makes a key and a certificate signed by this CA for `name`, valid for 127.0.0.1 and localhost. */
  issue(name: string): CertFiles;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
}

/** A new CA (EC P-256 keys: fast to make) named `name`. */
export function makeCa(name: string): TestCa {
  const dir = tempDir(`ringkv-ca-${name}-`);
  const caKey = join(dir.path, 'ca.key');
  const caFile = join(dir.path, 'ca.pem');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', caKey], dir.path);
  openssl(['req', '-x509', '-new', '-key', caKey, '-sha256', '-days', '2', '-subj', `/CN=${name} test CA`, '-out', caFile], dir.path);
  let serial = 1;
  return {
    dir: dir.path,
    caFile,
    issue(node: string): CertFiles {
      const keyFile = join(dir.path, `${node}.key`);
      const csr = join(dir.path, `${node}.csr`);
      const certFile = join(dir.path, `${node}.pem`);
      const ext = join(dir.path, `${node}.ext`);
      writeFileSync(
        ext,
        'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
      );
      openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyFile], dir.path);
      openssl(['req', '-new', '-key', keyFile, '-subj', `/CN=${node}`, '-out', csr], dir.path);
      openssl(
        ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(serial++), '-days', '2', '-sha256', '-extfile', ext, '-out', certFile],
        dir.path,
      );
      return { keyFile, certFile };
    },
    remove: () => dir.remove(),
  };
}
