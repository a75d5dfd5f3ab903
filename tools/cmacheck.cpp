// cmacheck: the command line. Thin: every subcommand (tools/cmd_*.cpp) calls a library
// function. This file builds the CLI11 app from the registered subcommands, adds `help`,
// and turns every parse error into `cmacheck: error: ...` with exit status 2.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "tools/commands.h"

using namespace cmacheck;

namespace {

const char* const kDescription =
    "cmacheck checks a reference CMA allocator (impl/) against an executable model of the\n"
    "Linux CMA semantics (model/), operation by operation.";

const char* const kFooter =
    "`cmacheck help COMMAND` or `cmacheck COMMAND --help` shows a command's options.\n"
    "exit status: 0 everything held, 1 a violation or failed expectation, 2 bad input";

// The subcommand that was being parsed when an error happened, for the hint.
std::string selected_name(const CLI::App& app) {
  const auto selected = app.get_subcommands();
  return selected.empty() ? "" : selected.front()->get_name();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app(kDescription, "cmacheck");
  app.footer(kFooter);
  app.require_subcommand(1);
  app.get_formatter()->column_width(26);

  std::vector<cli::Registered> order = cli::registry();
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.rank < b.rank; });
  std::vector<cli::Command> commands;
  for (const auto& r : order) commands.push_back(r.add(app));

  // `cmacheck help [COMMAND]`: the same text as `cmacheck [COMMAND] --help`.
  std::string help_topic;
  CLI::App* help = app.add_subcommand("help", "this text, or a command's options");
  help->add_option("COMMAND", help_topic, "a command")->type_name("");
  commands.push_back({help, [&]() -> int {
                        if (help_topic.empty()) {
                          std::cout << app.help();
                          return cli::kHeld;
                        }
                        for (const auto& c : commands)
                          if (c.app->get_name() == help_topic) {
                            std::cout << c.app->help("cmacheck");
                            return cli::kHeld;
                          }
                        return cli::usage_error("unknown command '" + help_topic + "' (see `cmacheck --help`)");
                      }});

  // An unknown first word is an unknown command (CLI11 would call it an extra argument).
  if (argc > 1 && argv[1][0] != '-' && !std::any_of(commands.begin(), commands.end(), [&](const auto& c) {
        return c.app->get_name() == argv[1];
      })) {
    cli::usage_error(std::string("unknown command '") + argv[1] + "' (see `cmacheck --help`)");
    return cli::kBadInput;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();  // the selected subcommand's help, when there is one
    return cli::kHeld;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return cli::kHeld;
  } catch (const CLI::ParseError& e) {
    if (argc < 2) {
      std::cerr << app.help();
      return cli::kBadInput;
    }
    const std::string name = selected_name(app);
    std::cerr << "cmacheck: error: " << e.what() << "\n"
              << "(see `cmacheck " << (name.empty() ? "" : name + " ") << "--help`)\n";
    return cli::kBadInput;
  }

  // Bad input never aborts: a filesystem or stream error that escaped a command is
  // reported like any unreadable path.
  try {
    for (const auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << (e.path1().empty() ? "cmacheck" : e.path1().string()) << ": error: " << e.code().message() << "\n";
    return cli::kBadInput;
  } catch (const std::ios_base::failure& e) {
    std::cerr << "cmacheck: error: " << e.what() << "\n";
    return cli::kBadInput;
  }
  return cli::kBadInput;
}
