// One error class for the control plane. `message` is ipvsadm's exact text; `exit` is the
// status ipvsadm exits with for that condition (2: its own checks, 255: a failed kernel
// operation, popt errors and the "Try ..." path, 1: listing errors).

export class IpvsError extends Error {
  /** 1-based line of -R input that raised the error (set by parseRestore and applyLines). */
  line?: number;

  constructor(
    /** errno-like name of the condition, e.g. "EEXIST", "ESRCH", "USAGE". */
    readonly code: string,
    message: string,
    readonly exit: number,
  ) {
    super(message);
    this.name = "IpvsError";
  }
}

/** A kernel-operation failure (ipvsadm exits 255 after printing the message). */
export function opError(code: string, message: string): IpvsError {
  return new IpvsError(code, message, 255);
}

/** An ipvsadm-side check (fail() in ipvsadm.c): exit 2. */
export function usageError(message: string): IpvsError {
  return new IpvsError("USAGE", message, 2);
}

// Messages of ipvsadm's error table (reference §1.7), by condition.
export const MSG = {
  SVC_EXISTS: "Service already exists",
  NO_SUCH_SERVICE: "No such service",
  SVC_NOT_DEFINED: "Service not defined",
  DEST_EXISTS: "Destination already exists",
  NO_SUCH_DEST: "No such destination",
  SCHED_NOT_FOUND: "Scheduler or persistence engine not found",
  ERANGE: "Numerical result out of range",
  EINVAL: "Invalid operation.  Possibly wrong module version, address not unicast, ...",
  ENOMEM: "Memory allocation problem",
  EAFNOSUPPORT: "Operation not supported with specified address family",
  EPERM: "Permission denied (you must be root)",
} as const;

/** Out of ids or table space: IPVS reports ENOMEM. */
export function ENOMEM_ERROR(): IpvsError {
  return opError("ENOMEM", MSG.ENOMEM);
}
