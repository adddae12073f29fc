using System.Collections.Immutable;
using HmmEmu.Analyzers.Flow;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace HmmEmu.Analyzers.Tests;

/// <summary>
/// The shared dataflow engine on its own, with a toy rule: <c>Open()</c> opens, <c>Close()</c> closes, and every exit
/// records whether the path left open.
/// </summary>
public class ForwardFlowTests
{
    [Fact]
    public void Run_ReturnInsideTryFinally_RunsTheFinallyOnEveryExit()
    {
        var exits = Exits("""
            void M(bool c)
            {
                Open();
                try
                {
                    if (c) return;
                    Work();
                }
                finally { Close(); }
            }
            """);
        Assert.Equal(2, exits.Length);
        Assert.All(exits, exit => Assert.False(exit.OpenAfter));
        Assert.All(exits, exit => Assert.True(exit.OpenBefore));
    }

    [Fact]
    public void Run_NegatedCapturedCondition_RefinesEachEdge()
    {
        // 'if (!ok) return' leaves only when Open() failed, so the open path reaches the end.
        var exits = Exits("""
            void M()
            {
                var ok = TryOpen();
                if (!ok) return;
                Work();
            }
            """);
        Assert.Equal(2, exits.Length);
        Assert.Single(exits, exit => exit.OpenAfter);
    }

    [Fact]
    public void Resolve_SingleAssignedLocal_FollowsToTheAssignedValue()
    {
        var graph = Graph("""
            void M()
            {
                var ok = TryOpen();
                if (ok) Work();
            }
            """);
        var values = new GraphValues(graph);
        var condition = graph.Blocks.Select(b => b.BranchValue).First(v => v is not null)!;
        Assert.IsAssignableFrom<IInvocationOperation>(values.Resolve(condition));
        Assert.IsAssignableFrom<ILocalReferenceOperation>(values.ResolveCaptures(condition));
    }

    private static ImmutableArray<(bool OpenBefore, bool OpenAfter)> Exits(string method)
    {
        var flow = new OpenFlow(Graph(method));
        Assert.True(flow.Run(CancellationToken.None));
        return flow.Exits.ToImmutableArray();
    }

    private static ControlFlowGraph Graph(string method)
    {
        string source = "class C {\n" + method + "\nvoid Open() {}\nbool TryOpen() => true;\nvoid Close() {}\nvoid Work() {}\n}";
        var tree = CSharpSyntaxTree.ParseText(source);
        var compilation = CSharpCompilation.Create("t", [tree], TestReferences.All, new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary));
        var model = compilation.GetSemanticModel(tree);
        var body = tree.GetRoot().DescendantNodes().OfType<MethodDeclarationSyntax>().First(m => m.Identifier.Text == "M");
        return ControlFlowGraph.Create((IMethodBodyOperation)model.GetOperation(body)!)!;
    }

    // State: whether a resource is open on every path (a must-fact, so false wins at joins).
    private sealed class OpenFlow(ControlFlowGraph graph) : ForwardFlow<OpenFlow.Open>(graph)
    {
        public List<(bool OpenBefore, bool OpenAfter)> Exits { get; } = new();

        protected override Open Entry => Open.No;

        protected override Open Join(Open a, Open b) => a.Value && b.Value ? Open.Yes : Open.No;

        protected override bool Same(Open a, Open b) => a.Value == b.Value;

        protected override Open Transfer(IOperation operation, Open state) => operation switch
        {
            IInvocationOperation { TargetMethod.Name: "Open" } => Open.Yes,
            IInvocationOperation { TargetMethod.Name: "Close" } => Open.No,
            _ => state,
        };

        protected override Open? Branch(IOperation condition, bool sense, Open state) => Refine(condition, sense, state, 0);

        protected override Open? RefineAtom(IOperation value, bool sense, Open state, int depth) =>
            Values.Resolve(value) is IInvocationOperation { TargetMethod.Name: "TryOpen" } ? (sense ? Open.Yes : state) : state;

        protected override void OnExit(IOperation? returnedValue, SyntaxNode? syntax, Open before, Open after) =>
            Exits.Add((before.Value, after.Value));

        public sealed class Open
        {
            public static readonly Open Yes = new(true);
            public static readonly Open No = new(false);

            private Open(bool value) => Value = value;

            public bool Value { get; }
        }
    }
}
