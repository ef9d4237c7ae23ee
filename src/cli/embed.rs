//! `r2dl embed -i in.fasta -o out.parquet`: sugar for
//! `COPY (SELECT id, embed(sequence) AS embedding FROM 'in.fasta') TO 'out.parquet'`.

use super::sql::{session, write_file};
use super::{CliError, EmbedArgs};

/// Runs `r2dl embed`.
pub async fn run(args: EmbedArgs) -> Result<(), CliError> {
    let ctx = session(&args.session, &args.model).await?;
    let input = args.input.to_string_lossy().replace('\'', "''");
    let sql = format!("SELECT id, embed(sequence) AS embedding FROM '{input}'");
    let plan = ctx.state().create_logical_plan(&sql).await?;
    let df = ctx.execute_logical_plan(plan).await?;
    let rows = write_file(&ctx, df, &args.output).await?;
    eprintln!("wrote {rows} embeddings to {}", args.output.display());
    Ok(())
}
