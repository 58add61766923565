import { setFlagsFromString } from 'node:v8';
import yargs from 'yargs';
import { ownVersion } from './own-version.js';
import { NixregError, ExitCode, oneLine } from '../errors.js';
import { commands } from './commands/index.js';

/**
 * Entry point. Commands live one per file in ./commands and are thin: they parse flags, pick a source and a
 * sink, and hand both to the copy pipeline. Every failure ends here as one line on stderr and a non-zero exit.
 */
export async function main(argv: string[]): Promise<void> {
  // undici's HTTP parser is WebAssembly; V8's optimising wasm tier (TurboFan) briefly adds ~35 MB of RSS when it
  // compiles it on the first request. The baseline tier (Liftoff) is enough for a parser that only frames
  // responses (bodies pass through as slices): measured peak RSS of a cold push 153 -> 132 MB, no slowdown.
  // Process-wide, so it belongs to the CLI, not the library; it must be set before the first request.
  setFlagsFromString('--liftoff-only');
  let cli = yargs(argv)
    .scriptName('nixreg')
    .usage('$0 <command> [options]\n\nOCI / Docker registry tool for Nix users.')
    .strict()
    .demandCommand(1, 'name a command')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    // yargs' own lookup finds the package.json nearest the current directory, not nixreg's
    .version(argv.includes('--version') ? ownVersion() : 'see nixreg --version')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      // yargs' "Not enough non-option arguments: got 0, need at least 1" does not say which: show the usage line.
      if (/^Not enough non-option arguments/.test(msg) && usage)
        throw new NixregError(`missing argument; usage: ${usage} (see nixreg ${wanted!.name} --help)`, ExitCode.usage);
      // yargs' "Invalid values: Argument: x, Given: "v", Choices: ..." in words, naming the flag as it is typed.
      const choice = /^Invalid values:\s*Argument: (\S+), Given: (.*), Choices: (.*)$/s.exec(msg);
      if (choice) msg = `--${choice[1]} ${choice[2]} is not one of ${choice[3]!.replace(/\s+/g, ' ')}`;
      throw new NixregError(`${msg} (see nixreg${wanted ? ' ' + wanted.name : ''} --help)`, ExitCode.usage);
    });
  // Load only the module of the command being run; the others are listed by name for --help and suggestions.
  const wanted = commands.find((c) => c.name === argv.find((a) => !a.startsWith('-')));
  let usage: string | undefined;
  for (const c of commands) {
    if (c === wanted) {
      const { command } = await c.load();
      usage = `nixreg ${String(command.command)}`;
      cli = cli.command({ ...command, describe: c.describe } as never);
    } else cli = cli.command(c.name, c.describe, {}, () => {});
  }
  // Node exits with status 0 once nothing is left to wait for, even while a command is still awaiting something that
  // can no longer happen (a stream event after its stream closed): never a silent success, say it and fail.
  const stalled = () => reportAndExit(new Error('the command stopped before it finished: it waited for an event that could no longer come'));
  process.once('beforeExit', stalled);
  try {
    await cli.parseAsync();
  } catch (err) {
    reportAndExit(err);
  } finally {
    process.off('beforeExit', stalled);
  }
}

export function reportAndExit(err: unknown): never {
  if (err instanceof NixregError) {
    process.stderr.write(`nixreg: ${err.message}\n`);
    if (process.env.NIXREG_DEBUG === '1' && err.cause) process.stderr.write(String((err.cause as Error).stack) + '\n');
    process.exit(err.exitCode);
  }
  const e = err as Error;
  process.stderr.write(`nixreg: internal error: ${oneLine(e?.message ?? String(err))} (please report; NIXREG_DEBUG=1 shows the stack)\n`);
  if (process.env.NIXREG_DEBUG === '1') process.stderr.write(String(e?.stack) + '\n');
  process.exit(ExitCode.failure);
}
