#include "peers/credentials.hpp"

#include <cstdlib>
#include <sstream>

#include <spdlog/spdlog.h>

#include "thrum/common/fs_util.hpp"

namespace thrum::core::peers {

void save_env_value(const std::filesystem::path& file, const std::string& name,
                    const std::string& value) {
  std::string out;
  if (auto text = read_file(file)) {
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);)
      if (line.rfind(name + "=", 0) != 0) out += line + "\n";
  }
  out += name + "=" + value + "\n";
  atomic_write_file(file, out, 0600);
}

std::string Credentials::held(const Transport& t) {
  const auto& spec = t.profile.credential;
  if (spec.name.empty() || spec.env.empty()) return "";
  if (auto it = cache_.find(spec.env); it != cache_.end()) return it->second;
  std::string value;
  if (const char* v = std::getenv(spec.env.c_str()); v && *v) {
    value = v;
  } else {
    try {
      if (auto text = read_file(env_file_)) {
        std::istringstream in(*text);
        for (std::string line; std::getline(in, line);)
          if (line.rfind(spec.env + "=", 0) == 0) value = line.substr(spec.env.size() + 1);
      }
    } catch (const std::exception&) {
    }
  }
  cache_[spec.env] = value;
  return value;
}

void Credentials::worked(const Transport& t, const std::optional<std::string>& given) {
  const auto& spec = t.profile.credential;
  if (!given || given->empty() || spec.name.empty() || spec.env.empty() || *given == held(t))
    return;
  cache_[spec.env] = *given;
  try {
    save_env_value(env_file_, spec.env, *given);
    spdlog::info("{} {} saved to {}", t->id(), spec.name, env_file_.string());
  } catch (const std::exception& e) {
    spdlog::warn("could not save the {} {}: {}", t->id(), spec.name, e.what());
  }
}

nlohmann::json Credentials::listen_options(const Transport& t,
                                           const std::optional<std::string>& given) {
  nlohmann::json host = {{"state_dir", (var_dir_ / t.profile.state_dir).string()}};
  if (!t.profile.credential.name.empty())
    host["auth_key"] = given && !given->empty() ? *given : held(t);
  return nlohmann::json{{"host", host}};
}

}  // namespace thrum::core::peers
