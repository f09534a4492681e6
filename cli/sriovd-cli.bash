# bash completion for sriovd-cli: commands, their options, and PCI addresses / IOMMU group
# numbers asked from the daemon (sriovd-cli --json, quietly; nothing is offered if it is down).
_sriovd_cli_addresses() {
  sriovd-cli "$@" --json devices 2>/dev/null | grep -o '"address": *"[0-9a-f:.]*"' | grep -o '[0-9a-f]\{4\}:[0-9a-f:.]*'
}

_sriovd_cli_leases() {
  sriovd-cli "$@" --json leases 2>/dev/null | grep -o '"id": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

_sriovd_cli_pools() {
  sriovd-cli "$@" --json pools 2>/dev/null | grep -o '"name": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'
}

_sriovd_cli() {
  local cur prev words cword
  _init_completion || return
  local global="--socket --url --token --cacert --cert --key --json --wait --help"
  local commands="host devices device groups group vfs mtu vf bind events pools pool alloc leases lease release attach detach"
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
    --vendor|--device-id|--pf|--numa|--name|--key|--physical-network) return ;;
    --type) COMPREPLY=($(compgen -W "vf pf any" -- "$cur")); return ;;
    --mode) COMPREPLY=($(compgen -W "vfio netdev" -- "$cur")); return ;;
    --policy) COMPREPLY=($(compgen -W "pack spread" -- "$cur")); return ;;
    --reset) COMPREPLY=($(compgen -W "restore defaults" -- "$cur")); return ;;
    --consumer) COMPREPLY=($(compgen -W "vm pod other" -- "$cur")); return ;;
    --pool) COMPREPLY=($(compgen -W "$(_sriovd_cli_pools "${conn[@]}")" -- "$cur")); return ;;
    --address) COMPREPLY=($(compgen -W "$(_sriovd_cli_addresses "${conn[@]}")" -- "$cur")); return ;;
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
    vf) opts="--mac --vlan --qos --proto --max-rate --min-rate --spoofchk --trust --link-state --mtu" ;;
    bind) opts="--group --force" ;;
    pool) opts="--vendor --device-id --driver --pf --address --numa --type --mode --policy --reset --physical-network --pf-address --link-type --rdma --pf-link-health" ;;
    alloc) opts="--address --consumer --name --numa --policy --key --mac --vlan --qos --spoofchk --trust --mtu" ;;
    leases) opts="--pool" ;;
    attach|detach) opts="--config --no-live" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts --help" -- "$cur"))
    return
  fi
  local args=0 j
  for ((j = i + 1; j < cword; j++)); do [[ "${words[j]}" != -* ]] && ((args++)); done
  case "$cmd" in
    pool)
      if ((args == 0)); then COMPREPLY=($(compgen -W "show create delete" -- "$cur"))
      elif ((args == 1)) && [[ "${words[cword-1]}" != create ]]; then
        COMPREPLY=($(compgen -W "$(_sriovd_cli_pools "${conn[@]}")" -- "$cur"))
      fi
      ;;
    alloc)
      ((args == 0)) && COMPREPLY=($(compgen -W "$(_sriovd_cli_pools "${conn[@]}")" -- "$cur"))
      ;;
    lease|release|attach|detach)
      ((args == 0)) && COMPREPLY=($(compgen -W "$(_sriovd_cli_leases "${conn[@]}")" -- "$cur"))
      ;;
    device|vfs|vf|bind)
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
