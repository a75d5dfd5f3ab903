#!/usr/bin/env bash
# impl/ and model/ must share no code: neither includes the other (rule of issue 4).
set -euo pipefail
root=${1:-.}
bad=0
if grep -rnE '#include\s*"model/' "$root/impl" 2>/dev/null; then
  echo "error: impl/ includes model/ (they must stay independent)" >&2; bad=1
fi
if grep -rnE '#include\s*"impl/' "$root/model" 2>/dev/null; then
  echo "error: model/ includes impl/ (they must stay independent)" >&2; bad=1
fi
exit $bad
