package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/orchardmdm/orchard/storage/postgres"
)

// migrateSetup is `orchard migrate`, which copies a bbolt database into PostgreSQL:
//
//	orchard migrate --from bolt:orchard-data/orchard.db --to postgres:DSN [--overwrite]
//
// The server must be stopped (the bbolt file is opened read-only, and its
// lock tells). Keys stay in the data dir: copy it to every replica.
func migrateSetup(fs *flag.FlagSet, e *env) func(context.Context, []string) error {
	from := fs.String("from", "", "source: bolt:PATH (e.g. bolt:orchard-data/orchard.db)")
	to := fs.String("to", "", "target: postgres:DSN (e.g. postgres:postgres://orchard@db/orchard)")
	overwrite := fs.Bool("overwrite", false, "delete the records already in the target database first (default: refuse a non-empty one)")
	return func(ctx context.Context, _ []string) error {
		path, ok := strings.CutPrefix(*from, "bolt:")
		if !ok || path == "" {
			return usagef("orchard migrate", "--from must be bolt:PATH")
		}
		dsn, ok := strings.CutPrefix(*to, "postgres:")
		if !ok || dsn == "" {
			return usagef("orchard migrate", "--to must be postgres:DSN")
		}
		dst, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			return err
		}
		defer dst.Close()
		counts, err := dst.CopyFromBolt(ctx, path, *overwrite)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(w, "table\tbbolt\tpostgres\t")
		total := 0
		for _, c := range counts {
			fmt.Fprintf(w, "%s\t%d\t%d\t\n", c.Table, c.Source, c.Copied)
			total += c.Copied
		}
		w.Flush()
		fmt.Fprintf(e.stdout, "copied %d records; counts verified. Start orchard serve --storage postgres with the same data dir (its keys open the sealed secrets).\n", total)
		return nil
	}
}
