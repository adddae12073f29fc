using System.Globalization;

namespace HmmEmu.Rnic.Tests;

/// <summary>
/// Keeps <c>docs/rnic.md</c> true to the Spec: each layout table's offset and type columns equal the Spec's constants
/// (and the constants tile the layout with no gap or overlap), and the QP state table is
/// <see cref="RnicQpStateMachine.ToMarkdown"/>.
/// </summary>
public sealed class RnicDocsTests
{
    private const string QpBegin = "<!-- rnic-qp-transitions:begin -->";
    private const string QpEnd = "<!-- rnic-qp-transitions:end -->";

    public static TheoryData<string> LayoutNames => new(Layouts.Keys);

    private static readonly Dictionary<string, (int Size, (int Offset, string Type)[] Fields)> Layouts = new()
    {
        ["RnicCommand"] = (RnicCommand.Size,
        [
            (RnicCommand.OpcodeOffset, "u8"), (RnicCommand.FlagsOffset, "u8"), (RnicCommand.ReservedOffset, "u16"),
            (RnicCommand.TokenOffset, "u32"), (RnicCommand.ArgsOffset, $"u64 × {RnicCommand.ArgCount}"),
        ]),
        ["RnicCommandCompletion"] = (RnicCommandCompletion.Size,
        [
            (RnicCommandCompletion.OpcodeOffset, "u8"), (RnicCommandCompletion.StatusOffset, "u8"),
            (RnicCommandCompletion.InfoOffset, "u16"), (RnicCommandCompletion.TokenOffset, "u32"),
            (RnicCommandCompletion.ObjectNumberOffset, "u32"), (RnicCommandCompletion.KeyOffset, "u32"),
            (RnicCommandCompletion.Out0Offset, "u64"), (RnicCommandCompletion.Out1Offset, "u64"),
        ]),
        ["RnicMttEntry"] = (RnicMttEntry.Size, [(0, "u64")]),
        ["RnicSge"] = (RnicSge.Size,
        [
            (RnicSge.AddressOffset, "u64"), (RnicSge.LengthOffset, "u32"), (RnicSge.LkeyOffset, "u32"),
        ]),
        ["RnicSendWqe"] = (RnicSendWqe.Size,
        [
            (RnicSendWqe.OpcodeOffset, "u8"), (RnicSendWqe.FlagsOffset, "u8"), (RnicSendWqe.SgeCountOffset, "u8"),
            (RnicSendWqe.Reserved0Offset, "u8"), (RnicSendWqe.ImmOffset, "u32"), (RnicSendWqe.WrIdOffset, "u64"),
            (RnicSendWqe.RemoteAddressOffset, "u64"), (RnicSendWqe.RkeyOffset, "u32"), (RnicSendWqe.Reserved1Offset, "u32"),
            (RnicSendWqe.CompareAddOffset, "u64"), (RnicSendWqe.SwapOffset, "u64"),
            (RnicSendWqe.Reserved2Offset, $"u8 × {RnicSendWqe.SgesOffset - RnicSendWqe.Reserved2Offset}"),
            (RnicSendWqe.SgesOffset, $"SGE × {RnicSendWqe.MaxSge}"),
        ]),
        ["RnicRecvWqe"] = (RnicRecvWqe.Size,
        [
            (RnicRecvWqe.WrIdOffset, "u64"), (RnicRecvWqe.SgeCountOffset, "u8"),
            (RnicRecvWqe.ReservedOffset, $"u8 × {RnicRecvWqe.SgesOffset - RnicRecvWqe.ReservedOffset}"),
            (RnicRecvWqe.SgesOffset, $"SGE × {RnicRecvWqe.MaxSge}"),
        ]),
        ["RnicCqe"] = (RnicCqe.Size,
        [
            (RnicCqe.WrIdOffset, "u64"), (RnicCqe.ByteLenOffset, "u32"), (RnicCqe.ImmOffset, "u32"),
            (RnicCqe.QpNumberOffset, "u32"), (RnicCqe.SrcQpOffset, "u32"), (RnicCqe.StatusOffset, "u8"),
            (RnicCqe.OpcodeOffset, "u8"), (RnicCqe.FlagsOffset, "u8"), (RnicCqe.FlagsOffset + 1, "u8"),
            (RnicCqe.WqeIndexOffset, "u16"), (RnicCqe.WqeIndexOffset + 2, "u8"), (RnicCqe.OwnerOffset, "u8"),
        ]),
        ["RnicEqe"] = (RnicEqe.Size,
        [
            (RnicEqe.TypeOffset, "u8"), (RnicEqe.SideOffset, "u8"), (RnicEqe.AccessOffset, "u8"), (RnicEqe.StatusOffset, "u8"),
            (RnicEqe.ObjectNumberOffset, "u32"), (RnicEqe.AddressOffset, "u64"), (RnicEqe.LengthOffset, "u32"),
            (RnicEqe.KeyOffset, "u32"), (RnicEqe.WqeIndexOffset, "u32"), (RnicEqe.SequenceOffset, "u32"),
        ]),
        ["RnicQpAttributes"] = (RnicQpAttributes.Size,
        [
            (RnicQpAttributes.StateOffset, "u8"), (RnicQpAttributes.CurStateOffset, "u8"), (RnicQpAttributes.PathMtuOffset, "u8"),
            (RnicQpAttributes.PortOffset, "u8"), (RnicQpAttributes.PkeyIndexOffset, "u16"), (RnicQpAttributes.MinRnrTimerOffset, "u8"),
            (RnicQpAttributes.TimeoutOffset, "u8"), (RnicQpAttributes.AccessFlagsOffset, "u32"), (RnicQpAttributes.DestQpnOffset, "u32"),
            (RnicQpAttributes.RqPsnOffset, "u32"), (RnicQpAttributes.SqPsnOffset, "u32"), (RnicQpAttributes.AvOffset, "u32"),
            (RnicQpAttributes.QkeyOffset, "u32"), (RnicQpAttributes.RetryCntOffset, "u8"), (RnicQpAttributes.RnrRetryOffset, "u8"),
            (RnicQpAttributes.MaxRdAtomicOffset, "u8"), (RnicQpAttributes.MaxDestRdAtomicOffset, "u8"),
            (RnicQpAttributes.EnSqdAsyncNotifyOffset, "u8"), (RnicQpAttributes.SqDrainingOffset, "u8"),
            (RnicQpAttributes.ReservedOffset, $"u8 × {RnicQpAttributes.Size - RnicQpAttributes.ReservedOffset}"),
        ]),
        ["RnicPacketHeader"] = (RnicPacketHeader.Size,
        [
            (RnicPacketHeader.OpcodeOffset, "u8"), (RnicPacketHeader.FlagsOffset, "u8"), (RnicPacketHeader.Reserved0Offset, "u16"),
            (RnicPacketHeader.DestQpnOffset, "u32"), (RnicPacketHeader.PsnOffset, "u32"), (RnicPacketHeader.SrcQpnOffset, "u32"),
            (RnicPacketHeader.VirtualAddressOffset, "u64"), (RnicPacketHeader.RkeyOffset, "u32"), (RnicPacketHeader.DmaLengthOffset, "u32"),
            (RnicPacketHeader.SyndromeOffset, "u8"), (RnicPacketHeader.SyndromeValueOffset, "u8"), (RnicPacketHeader.Reserved1Offset, "u16"),
            (RnicPacketHeader.MsnOffset, "u32"), (RnicPacketHeader.ImmOffset, "u32"), (RnicPacketHeader.PayloadLengthOffset, "u32"),
            (RnicPacketHeader.SwapAddOffset, "u64"), (RnicPacketHeader.CompareOffset, "u64"),
        ]),
    };

    [Theory]
    [MemberData(nameof(LayoutNames))]
    public void SpecLayout_FieldsTileTheEntryWithoutGapOrOverlap(string name)
    {
        var (size, fields) = Layouts[name];
        int next = 0;
        foreach (var (offset, type) in fields)
        {
            Assert.True(offset == next, $"{name}: field at 0x{offset:X2} should start at 0x{next:X2}.");
            next = offset + Bytes(type);
        }
        Assert.Equal(size, next);
    }

    [Theory]
    [MemberData(nameof(LayoutNames))]
    public void RnicMd_LayoutTable_MatchesSpecOffsetsAndTypes(string name)
    {
        var (_, fields) = Layouts[name];
        string expected = string.Join("\n", fields.Select(f => $"0x{f.Offset:X2} | {f.Type}"));
        var rows = TableRows(Section($"<!-- rnic-layout:{name}:begin -->", $"<!-- rnic-layout:{name}:end -->")).Skip(2)
            .Select(cells => $"{cells[0]} | {cells[1]}");
        string actual = string.Join("\n", rows);
        Assert.True(expected == actual,
            $"docs/rnic.md's {name} table (offset | type columns) differs from the Spec. Expected:\n{expected}\nActual:\n{actual}");
    }

    [Fact]
    public void RnicMd_QpTransitionTable_EqualsStateMachine()
    {
        string expected = RnicQpStateMachine.ToMarkdown().Trim('\n');
        string actual = Section(QpBegin, QpEnd).Trim('\n');
        Assert.True(expected == actual,
            $"The QP table in docs/rnic.md differs from RnicQpStateMachine.ToMarkdown(). Replace the text between the markers with:\n{expected}\n");
    }

    [Fact]
    public void RnicMd_StatusLine_NamesEveryPartThatExists()
    {
        string status = Doc().Split('\n').First(line => line.Contains("**Status:**", StringComparison.Ordinal));
        string next = string.Join('\n', Doc().Split('\n').SkipWhile(line => !line.Contains("**Status:**", StringComparison.Ordinal)).Take(4));
        foreach (string project in new[] { "HmmEmu.Rnic.Spec", "HmmEmu.Rnic.Model", "HmmEmu.Rnic.Driver" })
            Assert.Contains(project, next, StringComparison.Ordinal);
        Assert.DoesNotContain("Spec only", status, StringComparison.Ordinal);
    }

    private static int Bytes(string type)
    {
        string[] parts = type.Split(" × ");
        int one = parts[0] switch
        {
            "u8" => 1,
            "u16" => 2,
            "u32" => 4,
            "u64" => 8,
            "SGE" => RnicSge.Size,
            _ => throw new InvalidOperationException($"Unknown type '{type}' in the layout list."),
        };
        return parts.Length == 1 ? one : one * int.Parse(parts[1], CultureInfo.InvariantCulture);
    }

    private static IEnumerable<string[]> TableRows(string section) =>
        section.Split('\n')
            .Where(l => l.StartsWith('|'))
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray());

    private static string Section(string begin, string end)
    {
        string doc = Doc();
        int b = doc.IndexOf(begin, StringComparison.Ordinal);
        int e = doc.IndexOf(end, StringComparison.Ordinal);
        Assert.True(b >= 0 && e > b, $"docs/rnic.md must hold a table between the lines {begin} and {end}.");
        return doc[(b + begin.Length)..e];
    }

    private static string Doc() => File.ReadAllText(Path.Combine(FindRepoRoot(), "docs", "rnic.md")).ReplaceLineEndings("\n");

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
