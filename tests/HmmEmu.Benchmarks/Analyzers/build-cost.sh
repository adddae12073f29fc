#!/usr/bin/env bash
# What the HmmEmu analyzers add to a real `dotnet build` of a ~20 000-line driver corpus (issue 7).
#
# Generates the corpus AnalyzerCostBenchmarks uses (the three sample drivers copied COPIES times, each copy in its own
# namespace) as a project in a temporary folder outside the repository, builds its dependencies once, then rebuilds
# only the corpus (--no-incremental --no-dependencies) RUNS times without and RUNS times with the HmmEmu analyzers, and
# prints the median wall times, their ratio and the -p:ReportAnalyzer=true analyzer times of one more build.
# The corpus project has the SDK's usual analyzer settings (AnalysisLevel latest, code style in build), as ours do.
#
# Usage: tests/HmmEmu.Benchmarks/Analyzers/build-cost.sh [COPIES=4] [RUNS=5]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
copies="${1:-4}"
runs="${2:-5}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

lines=0
for ((c = 1; c <= copies; c++)); do
  for driver in devices/Mirror/HmmEmu.Mirror.Driver devices/Gpu/HmmEmu.Gpu.Driver devices/Rnic/HmmEmu.Rnic.Driver; do
    while IFS= read -r -d '' file; do
      rel="${file#"$repo/$driver/"}"
      out="$work/corpus/Copy$c/$driver/$rel"
      mkdir -p "$(dirname "$out")"
      sed -E "0,/^namespace ([A-Za-z0-9_.]+);/s//namespace \1.Copy$c;/" "$file" > "$out"
      lines=$((lines + $(wc -l < "$out")))
    done < <(find "$repo/$driver" -name '*.cs' -not -path '*/bin/*' -not -path '*/obj/*' -print0 | sort -z)
  done
done

cat > "$work/corpus/DriverCorpus.csproj" <<PROJ
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <LangVersion>latest</LangVersion>
    <AnalysisLevel>latest</AnalysisLevel>
    <EnforceCodeStyleInBuild>true</EnforceCodeStyleInBuild>
    <GenerateDocumentationFile>false</GenerateDocumentationFile>
  </PropertyGroup>
  <ItemGroup>
    <ProjectReference Include="$repo/src/HmmEmu.Kernel/HmmEmu.Kernel.csproj" />
    <ProjectReference Include="$repo/src/HmmEmu.Hardware/HmmEmu.Hardware.csproj" />
    <ProjectReference Include="$repo/devices/Gpu/HmmEmu.Gpu.Spec/HmmEmu.Gpu.Spec.csproj" />
    <ProjectReference Include="$repo/devices/Rnic/HmmEmu.Rnic.Spec/HmmEmu.Rnic.Spec.csproj" />
  </ItemGroup>
  <ItemGroup Condition="'\$(HmmEmuAnalyzers)' != 'false'">
    <ProjectReference Include="$repo/analyzers/HmmEmu.Analyzers/HmmEmu.Analyzers.csproj" OutputItemType="Analyzer" ReferenceOutputAssembly="false" />
  </ItemGroup>
</Project>
PROJ

cd "$work/corpus"
echo "corpus: $(find . -name '*.cs' | wc -l) files, $lines lines, $copies copies of the three sample drivers"
dotnet build -c Release -v q -nologo > "$work/first.log" 2>&1 || { cat "$work/first.log"; exit 1; }

time_build() { # $1 = true|false: prints the wall time of one corpus-only rebuild in ms
  local start end
  start=$(date +%s%N)
  dotnet build -c Release --no-restore --no-incremental --no-dependencies -v q -nologo -p:HmmEmuAnalyzers="$1" > "$work/build.log" 2>&1 \
    || { cat "$work/build.log" >&2; exit 1; }
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : int((a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

without=(); with=()
for ((r = 1; r <= runs; r++)); do
  without+=("$(time_build false)")
  with+=("$(time_build true)")
done
m0=$(printf '%s\n' "${without[@]}" | median)
m1=$(printf '%s\n' "${with[@]}" | median)
echo "without HmmEmu analyzers: ${without[*]} ms (median $m0)"
echo "with HmmEmu analyzers:    ${with[*]} ms (median $m1)"
awk -v a="$m0" -v b="$m1" 'BEGIN {printf "ratio: %.2f (goal: at most 1.25)\n", b / a}'

dotnet build -c Release --no-restore --no-incremental --no-dependencies -v d -nologo -p:ReportAnalyzer=true > "$work/report.log" 2>&1
echo "-p:ReportAnalyzer=true (one build):"
# The summary csc prints: total time, then a line per analyzer assembly and per analyzer (not the command line).
awk 'length($0) < 300' "$work/report.log" \
  | grep -E "Total analyzer execution time|^ +[0-9.<]+ +[0-9<]+ +[^ ]+, Version=|^ +[0-9.<]+ +[0-9<]+ +HmmEmu\.Analyzers\." \
  | sed -E 's/^ +//; s/, Version=.*//' | head -40
