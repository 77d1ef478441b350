package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
)

// The scripts ask the binary itself (orchard __complete <words>) for the
// candidates, so completion follows the command tree with no regeneration.
var completionScripts = map[string]string{
	"bash": `# bash completion for orchard
_orchard() {
  local IFS=$'\n'
  COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _orchard orchard
`,
	"zsh": `#compdef orchard
_orchard() {
  local -a candidates
  candidates=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
  compadd -a candidates
}
compdef _orchard orchard
`,
	"fish": `# fish completion for orchard
function __orchard_complete
    set -l tokens (commandline -opc) (commandline -ct)
    $tokens[1] __complete $tokens[2..-1] 2>/dev/null
end
complete -c orchard -f -a '(__orchard_complete)'
`,
}

func completionSetup(_ *flag.FlagSet, e *env) func(context.Context, []string) error {
	return func(_ context.Context, args []string) error {
		s, ok := completionScripts[args[0]]
		if !ok {
			return usagef("orchard completion", "unknown shell %q: want bash, zsh or fish", args[0])
		}
		fmt.Fprint(e.stdout, s)
		return nil
	}
}

// completeSetup prints the candidates for the last word: subcommand names in
// a group, flag names (own and global) in a leaf when the word starts with
// "-"; nothing else, so the shell falls back to file names.
func completeSetup(_ *flag.FlagSet, e *env) func(context.Context, []string) error {
	return func(_ context.Context, words []string) error {
		if len(words) == 0 {
			words = []string{""}
		}
		cur := words[len(words)-1]
		node := e.root
		for _, w := range words[:len(words)-1] {
			if strings.HasPrefix(w, "-") || node.subs == nil {
				continue
			}
			if sub := node.sub(w); sub != nil {
				node = sub
			}
		}
		var out []string
		if node.subs != nil && !strings.HasPrefix(cur, "-") {
			for _, s := range node.subs {
				if !s.hidden && strings.HasPrefix(s.name, cur) {
					out = append(out, s.name)
				}
			}
		} else if strings.HasPrefix(cur, "-") {
			fs := flag.NewFlagSet("", flag.ContinueOnError)
			if node.setup != nil {
				node.setup(fs, &env{})
			}
			(&env{}).globalFlags(fs)
			fs.VisitAll(func(f *flag.Flag) {
				name := "--" + f.Name
				if len(f.Name) == 1 {
					name = "-" + f.Name
				}
				if strings.HasPrefix(name, cur) {
					out = append(out, name)
				}
			})
			if node.subs != nil || node.setup == nil {
				out = append(out, "--help")
			}
			sort.Strings(out)
		}
		for _, c := range out {
			fmt.Fprintln(e.stdout, c)
		}
		return nil
	}
}
