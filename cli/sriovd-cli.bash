# bash completion for sriovd-cli: commands, their options, and PCI addresses / IOMMU group
# numbers asked from the daemon (sriovd-cli --json, quietly; nothing is offered if it is down).
_sriovd_cli_addresses() {
  sriovd-cli "$@" --json devices 2>/dev/null | grep -o '"address": *"[0-9a-f:.]*"' | grep -o '[0-9a-f]\{4\}:[0-9a-f:.]*'
}

_sriovd_cli() {
  local cur prev words cword
  _init_completion || return
  local global="--socket --url --token --cacert --cert --key --json --wait --help"
  local commands="host devices device groups group vfs vf bind events"
  local conn=() cmd="" i
  for ((i = 1; i < cword; i++)); do
    case "${words[i]}" in
      --socket|--url|--token|--cacert|--cert|--key) conn+=("${words[i]}" "${words[i+1]}"); ((i++)) ;;
      --wait) ((i++)) ;;
      -*) ;;
      *) cmd="${words[i]}"; break ;;
    esac
  done
  case "$prev" in
    --socket|--cacert|--cert|--key) _filedir; return ;;
    --url|--token|--wait|--vendor-id|--numa-node|--class-id|--mac|--vlan|--qos|--max-rate|--min-rate|--since|--count) return ;;
    --driver) COMPREPLY=($(compgen -W "none vfio-pci" -- "$cur")); return ;;
    --autoprobe|--spoofchk|--trust) COMPREPLY=($(compgen -W "on off" -- "$cur")); return ;;
    --proto) COMPREPLY=($(compgen -W "802.1Q 802.1ad" -- "$cur")); return ;;
    --link-state) COMPREPLY=($(compgen -W "auto enable disable" -- "$cur")); return ;;
    --physfn) COMPREPLY=($(compgen -W "$(_sriovd_cli_addresses "${conn[@]}")" -- "$cur")); return ;;
  esac
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "$global $commands" -- "$cur"))
    return
  fi
  local opts=""
  case "$cmd" in
    devices) opts="--vendor-id --driver --physfn --numa-node --class-id --watch" ;;
    events) opts="--since --count" ;;
    vfs) opts="--autoprobe" ;;
    vf) opts="--mac --vlan --qos --proto --max-rate --min-rate --spoofchk --trust --link-state" ;;
    bind) opts="--group --force" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
    return
  fi
  case "$cmd" in
    device|vfs|vf|bind)
      local args=0
      for ((j = i + 1; j < cword; j++)); do [[ "${words[j]}" != -* ]] && ((args++)); done
      if ((args == 0)); then
        COMPREPLY=($(compgen -W "$(_sriovd_cli_addresses "${conn[@]}")" -- "$cur"))
      elif [[ "$cmd" == bind && args -eq 1 ]]; then
        COMPREPLY=($(compgen -W "vfio-pci host none" -- "$cur"))
      fi
      ;;
  esac
}
complete -F _sriovd_cli sriovd-cli
