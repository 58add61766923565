/**
 * Is process `pid` still running? Temp files and directories carry their writer's PID, so a later run can remove
 * those of runs that are gone (a run killed with kill -9 never reaches its cleanup). EPERM: it exists, owned by
 * another user.
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}
