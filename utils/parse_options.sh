# Command-line options for run.sh, in the convention of Kaldi/asteroid recipes (source this file).
#
# `--name value` or `--name=value` sets the shell variable `name` (dashes become underscores) when
# the sourcing script defines it. An option that is not a shell variable but is a key of the conf
# file ($conf, read once here) is collected in the array `conf_overrides`, which run.sh passes on
# to every Python entry point. Anything else prints the usage ($help_message) and exits 1.
# `--help` prints the usage and exits 0.

conf_overrides=()
_conf_keys() {
  # keys of the sectioned conf.yml: two-space-indented `key:` lines
  sed -n 's/^  \([A-Za-z_][A-Za-z0-9_]*\):.*/\1/p' "$1" 2>/dev/null
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      printf '%s\n' "${help_message:-No help found.}"
      exit 0 ;;
    --conf=*|--conf)
      # --conf is read before the conf keys are looked up
      if [ "$1" = --conf ]; then conf=$2; shift 2; else conf=${1#--conf=}; shift; fi ;;
    --*=*|--*)
      _opt=${1#--}
      if [[ $_opt == *=* ]]; then _val=${_opt#*=}; _opt=${_opt%%=*}; _n=1
      elif [ $# -ge 2 ]; then _val=$2; _n=2
      else echo "$0: option --$_opt needs a value" >&2; printf '%s\n' "${help_message:-}" >&2; exit 1
      fi
      _name=${_opt//-/_}
      if [[ ! $_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
        echo "$0: invalid option --$_opt" >&2; printf '%s\n' "${help_message:-}" >&2; exit 1
      fi
      if declare -p "$_name" >/dev/null 2>&1 && [ "$_name" != conf_overrides ]; then
        printf -v "$_name" '%s' "$_val"
      elif _conf_keys "${conf:-conf.yml}" | grep -qx "$_name"; then
        conf_overrides+=("--$_name" "$_val")
      else
        echo "$0: unknown option --$_opt (not a run.sh option nor a key of ${conf:-conf.yml})" >&2
        printf '%s\n' "${help_message:-}" >&2
        exit 1
      fi
      shift $_n ;;
    *)
      break ;;
  esac
done
if [ $# -gt 0 ]; then
  echo "$0: unexpected argument '$1'" >&2; printf '%s\n' "${help_message:-}" >&2; exit 1
fi
unset _opt _val _name _n
