using HmmEmu.Kernel;

namespace HmmEmu.Rnic.Model.Tests;

/// <summary>Keeps <c>docs/rnic.md</c> true to the model: its BAR0 table is the model's own register map.</summary>
public sealed class RnicModelDocsTests
{
    private const string BeginMarker = "<!-- rnic-bar0:begin -->";
    private const string EndMarker = "<!-- rnic-bar0:end -->";

    [Fact]
    public void RnicMd_Bar0Table_EqualsDefaultModelRegisterMap()
    {
        string expected;
        using (var kernel = new HostKernel())
        using (var model = new RnicModel(kernel))
            expected = Normalise(model.Bar0.ToMarkdown()).Trim('\n');

        string path = Path.Combine(FindRepoRoot(), "docs", "rnic.md");
        string doc = Normalise(File.ReadAllText(path));
        int begin = doc.IndexOf(BeginMarker, StringComparison.Ordinal);
        int end = doc.IndexOf(EndMarker, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin,
            $"{path} must hold the BAR0 table between the lines {BeginMarker} and {EndMarker}.");
        string actual = doc[(begin + BeginMarker.Length)..end].Trim('\n');

        Assert.True(actual == expected,
            $"The BAR0 table in {path} differs from RnicModel.Bar0.ToMarkdown(). Replace the text between the markers "
            + $"with the model's map:\n{expected}\n");
    }

    private static string Normalise(string text) => text.ReplaceLineEndings("\n");

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "HmmEmu.sln")))
                return d.FullName;
        }
        throw new InvalidOperationException("HmmEmu.sln not found above " + AppContext.BaseDirectory);
    }
}
