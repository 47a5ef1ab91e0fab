// `ringkv log-level LEVEL --node N`: changes one node's log level while it
// runs (POST /admin/log-level, admin token), e.g. to debug for a while.
import type { Command } from 'commander';

/** What the command needs of a client. */
export interface LogLevelClient {
  setLogLevel(level: string, target?: { node?: string }): Promise<{ level: string; previous: string }>;
}

export interface LogLevelOptions {
  node: string;
  tlsCa?: string;
  token?: string;
  tokenFile?: string;
}

export function registerLogLevelCommands(program: Command, opts: { defaultNode: string; tlsCaHelp: string; withTokenOptions: (cmd: Command) => Command; client: (o: LogLevelOptions) => LogLevelClient }): void {
  opts
    .withTokenOptions(program.command('log-level <level>'))
    .description('change a node\'s log level while it runs: trace, debug, info, warn, error, fatal or silent (needs an admin token)')
    .option('--node <host:port>', 'the node whose level changes', opts.defaultNode)
    .option('--tls-ca <file>', opts.tlsCaHelp)
    .action(async (level: string, o: LogLevelOptions) => {
      const { previous } = await opts.client(o).setLogLevel(level);
      console.error(`${o.node}: log level ${previous} → ${level}`);
    });
}
