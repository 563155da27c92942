// What `-L` prints for a ListReply, whichever of its forms the options ask for. The
// daemon calls this with the CLI's options (and the CLI's names when not numeric) and
// sends the text: a listing of 100 000 destinations as data was 36 MB of JSON between
// the daemon's stringify and the CLI's parse, a second before any formatting. The CLI
// calls it for the empty table when no daemon runs. -c and --laddr have their own data.
import type { ListOptions } from "../control/commands.ts";
import type { ListReply } from "../control/protocol.ts";
import { formatListJson } from "./format_json.ts";
import { formatHealth } from "./format_health.ts";
import { formatList, formatTimeouts } from "./format_list.ts";
import type { ReverseNames } from "./names.ts";

export function listText(list: ListReply, opts: ListOptions, names: ReverseNames): string {
  if (opts.timeout) return formatTimeouts(list.timeouts);
  if (opts.daemon) return ""; // tslb runs no sync daemon
  if (opts.json) return formatListJson(list, opts);
  if (opts.health) return formatHealth(list, opts, names);
  return formatList(list, opts, names);
}
