using HmmEmu.Hardware.Registers;

namespace HmmEmu.Hardware.Tests.Registers;

/// <summary>The register map's Markdown table for docs/.</summary>
public sealed class RegisterMarkdownTests
{
    private static RegisterFile SampleFile()
    {
        var f = new RegisterFile("edu.bar0", 0x1000);
        f.Define32(0x20, "STATUS", "Status | flags.", writeOneToClear: 0x100, readWrite: 0x80);
        f.Define32(0x00, "ID", "Identity and version.", reset: 0x010000ed);
        f.Define64(0x80, "DMA_SRC", "DMA source bus address.", readWrite: ~0UL);
        f.Define32(0x60, "IRQ_RAISE", "Raise an interrupt.", writeOnly: ~0u, onWrite: (_, _) => { });
        return f;
    }

    [Fact]
    public void ToMarkdown_AnyFile_StartsWithHeaderAndSeparatorRows()
    {
        string[] lines = SampleFile().ToMarkdown().Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal("| Offset | Name | Size | Reset | Access | Description |", lines[0]);
        Assert.Equal("| --- | --- | --- | --- | --- | --- |", lines[1]);
    }

    [Fact]
    public void ToMarkdown_RegistersDeclaredOutOfOrder_OneRowEachInOffsetOrder()
    {
        string[] rows = SampleFile().ToMarkdown().Split('\n', StringSplitOptions.RemoveEmptyEntries)[2..];

        Assert.Equal(["ID", "STATUS", "IRQ_RAISE", "DMA_SRC"], rows.Select(r => r.Split(" | ")[1]));
    }

    [Fact]
    public void ToMarkdown_ReadOnlyRegister_RowShowsOffsetSizeResetAndAccess()
    {
        string row = SampleFile().ToMarkdown().Split('\n')[2];

        Assert.Equal("| 0x0000 | ID | 32 | 0x010000ed | RO [31:0] | Identity and version. |", row);
    }

    [Fact]
    public void ToMarkdown_MixedMasks_ListsBitRangesPerModeFromHighToLow()
    {
        string row = SampleFile().ToMarkdown().Split('\n')[3];

        Assert.Contains("| RO [31:9], W1C [8], RW [7], RO [6:0] |", row, StringComparison.Ordinal);
    }

    [Fact]
    public void ToMarkdown_PipeInDescription_IsEscaped()
    {
        string row = SampleFile().ToMarkdown().Split('\n')[3];

        Assert.EndsWith("| Status \\| flags. |", row, StringComparison.Ordinal);
    }

    [Fact]
    public void ToMarkdown_Doorbell_MarkedInAccessColumn()
    {
        string row = SampleFile().ToMarkdown().Split('\n')[4];

        Assert.Contains("WO [31:0], doorbell", row, StringComparison.Ordinal);
    }

    [Fact]
    public void ToMarkdown_SixtyFourBitRegister_ShowsSize64AndSixteenDigitReset()
    {
        string row = SampleFile().ToMarkdown().Split('\n')[5];

        Assert.StartsWith("| 0x0080 | DMA_SRC | 64 | 0x0000000000000000 | RW [63:0] |", row, StringComparison.Ordinal);
    }

    [Fact]
    public void ToMarkdown_RegisterWithFields_ListsFieldsByName()
    {
        var f = new RegisterFile("x", 0x10);
        f.Define(new RegisterDefinition
        {
            Offset = 0,
            Name = "CTRL",
            Fields = [new RegisterField("ENABLE", 0, 1, FieldMode.ReadWrite), new RegisterField("MODE", 4, 3, FieldMode.ReadOnly)],
        });

        string row = f.ToMarkdown().Split('\n')[2];

        Assert.Contains("| MODE [6:4] RO, ENABLE [0] RW |", row, StringComparison.Ordinal);
    }
}
