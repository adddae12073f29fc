using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests;

public sealed class CompletionLedgerTests
{
    [Fact]
    public void Problems_EveryRequestCompletedOnce_None()
    {
        var ledger = new CompletionLedger("nic");
        ledger.Posted();
        ledger.Posted(2);

        Assert.Empty(ledger.Problems(completionsWritten: 3));
    }

    [Fact]
    public void Problems_RequestNeverCompleted_ReportsItAsUnfinished()
    {
        var ledger = new CompletionLedger("nic");
        ledger.Posted(3);

        var problem = Assert.Single(ledger.Problems(completionsWritten: 2));

        Assert.StartsWith("INV-12 (exactly once): nic", problem, StringComparison.Ordinal);
        Assert.Contains("1 never finished", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Problems_CompletionWrittenTwice_ReportsTheUnaskedOne()
    {
        var ledger = new CompletionLedger("nic");
        ledger.Posted(2);

        var problem = Assert.Single(ledger.Problems(completionsWritten: 3));

        Assert.Contains("1 completion(s) nobody asked for", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Problems_NotedMismatch_ReportedOnceThenForgotten()
    {
        var ledger = new CompletionLedger("nic");
        ledger.Posted();
        ledger.Note("the completion of WR 1 names WR 0");

        Assert.Equal(["INV-12 (honest status): nic: the completion of WR 1 names WR 0"], ledger.Problems(1));
        Assert.Empty(ledger.Problems(1));
    }
}
