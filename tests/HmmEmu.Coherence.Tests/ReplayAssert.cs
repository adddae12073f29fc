using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests;

/// <summary>Replays a kept case (a regression found by a run) and asserts that every command ran and no rule broke.</summary>
internal static class ReplayAssert
{
    public static ReplayResult Passes(CoherenceConfig config, IReadOnlyList<CoherenceCommand> commands)
    {
        var result = CoherenceSuite.Replay(config, commands);

        Assert.Empty(result.Problems);
        Assert.Equal(commands.Count, result.Steps);
        return result;
    }
}
